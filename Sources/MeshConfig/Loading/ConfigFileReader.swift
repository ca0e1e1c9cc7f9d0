#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a config file's text with plain POSIX calls, so that a failure can
/// be reported with the operating system's own words ("No such file or
/// directory", "Permission denied").
enum ConfigFileReader {
    static func text(ofFile path: String) -> Result<String, ConfigIssue> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return .failure(osIssue(path, errno)) }
        defer { close(descriptor) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress, buffer.count)
            }
            if count == 0 {
                break
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(osIssue(path, errno))
            }
            bytes.append(contentsOf: chunk[..<count])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(ConfigIssue(path: "", message: "cannot read config file \"\(path)\": it is not UTF-8 text"))
        }
        return .success(text)
    }

    private static func osIssue(_ path: String, _ code: Int32) -> ConfigIssue {
        ConfigIssue(path: "", message: "cannot read config file \"\(path)\": \(String(cString: strerror(code)))")
    }
}
