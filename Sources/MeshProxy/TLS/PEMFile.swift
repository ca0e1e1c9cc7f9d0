import MeshConfig

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads PEM files whole. The proxy reads them when a config is applied (a
/// reload picks up a certificate replaced in place) and compares what they
/// hold across reloads.
enum PEMFile {
    /// The PEM text of a source: the file's content, or the text itself.
    static func text(of source: PEMSource, path: String) throws -> String {
        switch source {
        case .file(let file): try read(file, path: path)
        case .inMemory(let pem): pem
        }
    }

    /// PEM files are small; a larger file is not one.
    static let maximumBytes = 1 << 20

    static func read(_ file: String, path: String) throws -> String {
        guard let handle = fopen(file, "rb") else {
            throw TLSSetupError(path: path, message: "cannot read \(file): \(String(cString: strerror(errno)))")
        }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = fread(&chunk, 1, chunk.count, handle)
            if count > 0 {
                bytes.append(contentsOf: chunk[0..<count])
            }
            guard bytes.count <= maximumBytes else {
                throw TLSSetupError(path: path, message: "\(file) is over 1 MiB, too large for a PEM file")
            }
            if count < chunk.count {
                break
            }
        }
        if ferror(handle) != 0 {
            throw TLSSetupError(path: path, message: "cannot read \(file)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
