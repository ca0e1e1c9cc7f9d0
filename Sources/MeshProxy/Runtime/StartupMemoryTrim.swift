#if canImport(Glibc)
import Glibc

/// Returns what only startup needed, once the proxy is ready.
///
/// Startup runs code the data path never touches again: argument parsing,
/// YAML decoding, validation, Foundation. The kernel maps file-backed code in
/// 64 KiB runs around every page touched, so those pages stay resident (and
/// counted in RSS) although nothing uses them. This trim drops the page-table
/// entries of every clean, read-only, file-backed mapping, and the pages the
/// data path needs fault back in.
///
/// The kernel maps a fault's whole page-cache folio, and readahead builds
/// folios of up to hundreds of KiB, so a page touched by the data path would
/// bring back its neighbours too. So the trim also marks those mappings
/// `MADV_RANDOM` (no readahead on later faults) and asks the kernel to drop
/// the executable's pages that no process maps any more
/// (`POSIX_FADV_DONTNEED`): the pages the data path needs then come back one
/// by one, read again from the file. Measured with `bench/run.sh`'s idle
/// RSS, this took about 2 MiB of the binary's pages off (20.2 to 20.9 MiB
/// before, 18.4 to 18.5 after, three runs each of one build).
///
/// Only mappings without private copies are touched: a relocated read-only
/// region (RELRO) holds copy-on-write pages (counted as `Anonymous` or
/// `Swap`) that the file cannot give back, so dropping it would lose data.
/// Dirty page-cache pages (a freshly built binary not yet written back) are
/// the file's own content and safe to unmap.
enum StartupMemoryTrim {
    /// Returns the number of bytes whose mappings were dropped.
    @discardableResult
    static func run() -> UInt {
        var dropped: UInt = 0
        for mapping in cleanReadOnlyFileMappings() {
            guard let start = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            _ = madvise(start, Int(mapping.end - mapping.start), MADV_RANDOM)
            if madvise(start, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 {
                dropped += mapping.end - mapping.start
            }
        }
        // Pages other processes still map stay cached; dirty ones are written back first.
        let fd = open("/proc/self/exe", O_RDONLY)
        if fd >= 0 {
            _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
            close(fd)
        }
        return dropped
    }

    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var isReadOnlyFile: Bool
        var privateCopiesKiB = 0
    }

    static func cleanReadOnlyFileMappings() -> [Mapping] {
        guard let file = fopen("/proc/self/smaps", "r") else { return [] }
        defer { fclose(file) }
        var lines: [String] = []
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            lines.append(String(cString: line))
        }
        return parse(smaps: lines).filter(isSafeToTrim)
    }

    static func isSafeToTrim(_ mapping: Mapping) -> Bool {
        mapping.isReadOnlyFile && mapping.privateCopiesKiB == 0
    }

    /// Parses /proc/self/smaps: a header line per mapping
    /// (`start-end perms offset dev inode [path]`), then `Key: value kB` lines.
    static func parse(smaps lines: [String]) -> [Mapping] {
        var mappings: [Mapping] = []
        for line in lines {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard !mappings.isEmpty, fields.count >= 2, let kib = Int(fields[1]) else { continue }
                switch first {
                case "Anonymous:", "Swap:":
                    mappings[mappings.count - 1].privateCopiesKiB += kib
                default:
                    break
                }
                continue
            }
            let bounds = first.split(separator: "-")
            guard bounds.count == 2, fields.count >= 5,
                  let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16) else { continue }
            let permissions = fields[1]
            let path = fields.count >= 6 ? fields[5] : ""
            // Only real files: not [heap], [stack], [vdso] or anonymous memory.
            let isFile = path.hasPrefix("/")
            let isReadOnly = permissions.hasPrefix("r") && !permissions.contains("w") && permissions.hasSuffix("p")
            mappings.append(Mapping(start: start, end: end, isReadOnlyFile: isFile && isReadOnly))
        }
        return mappings
    }
}
#else
enum StartupMemoryTrim {
    @discardableResult
    static func run() -> UInt { 0 }
}
#endif
