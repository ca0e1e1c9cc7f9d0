#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import MeshConfig
import NIOCore

/// Where access-log lines go: standard output or a file opened for
/// appending. Writes run on a queue of their own, so a slow disk or a full
/// pipe never stalls an event loop; loops hand over their lines in batches
/// (`AccessLogRecorder`), one hop per batch rather than per request.
final class AccessLogWriter: Sendable {
    let config: AccessLogConfig
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    private let queue = DispatchQueue(label: "swiftmesh.access-log")

    struct OpenError: Error, CustomStringConvertible {
        var path: String
        var errno: Int32
        var description: String {
            "accessLog.path: cannot open \"\(path)\" for appending (\(String(cString: strerror(errno)))); create its directory or fix its permissions"
        }
    }

    init(_ config: AccessLogConfig) throws {
        self.config = config
        switch config.destination {
        case .standardOutput:
            descriptor = STDOUT_FILENO
            ownsDescriptor = false
        case .file(let path):
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw OpenError(path: path, errno: errno) }
            descriptor = fd
            ownsDescriptor = true
        }
    }

    /// Appends `lines` (whole lines, each ending in a newline).
    func write(_ lines: ByteBuffer) {
        let fd = descriptor
        queue.async {
            lines.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else {
                        return  // the destination is gone; the lines are dropped rather than retried forever
                    }
                }
            }
        }
    }

    /// Waits for the lines handed over so far to be written, then closes
    /// the file. Called when a reload replaces the writer and when the
    /// proxy stops, so that no line is lost.
    func close() {
        let (fd, owns) = (descriptor, ownsDescriptor)
        queue.sync {
            if owns {
                _ = Glibc.close(fd)
            }
        }
    }
}
