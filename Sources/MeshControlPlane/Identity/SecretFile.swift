import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files that hold secrets (the root key, the admin token): created with
/// mode 0600 from the start, never readable by others even for a moment,
/// and refused when someone widened their mode since.
enum SecretFile {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The file's content, nil when it does not exist.
    static func read(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw Problem(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & 0o077 == 0 else {
            throw Problem(description: "\(path) is readable by others (mode \(String(status.st_mode & 0o777, radix: 8))); run chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Problem(description: "cannot read \(path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Creates the file with mode 0600; fails when it exists, so two
    /// processes starting at once cannot overwrite each other's secret.
    static func create(_ path: String, content: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw Problem(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array(content.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else {
                throw Problem(description: "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += count
        }
        guard fsync(descriptor) == 0 else {
            throw Problem(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
