import Testing

@testable import MeshProxy

@Suite struct StartupMemoryTrimTests {
    static let smaps = [
        "55f2580a8000-55f259bdb000 r-xp 00000000 fe:00 5344047   /usr/bin/swiftmesh",
        "Rss:               15052 kB",
        "Private_Dirty:     15052 kB",
        "Anonymous:             0 kB",
        "55f259bdb000-55f259ca8000 r--p 01b32000 fe:00 5344047   /usr/bin/swiftmesh",
        "Anonymous:           820 kB",
        "55f259ca8000-55f25c0ef000 rw-p 01bff000 fe:00 5344047   /usr/bin/swiftmesh",
        "Anonymous:           360 kB",
        "7fdf8c244000-7fdf8c39a000 r-xp 00026000 fe:00 12      /usr/lib/x86_64-linux-gnu/libc.so.6",
        "Anonymous:             0 kB",
        "Swap:                  4 kB",
        "7fdf80000000-7fdf800e8000 rw-p 00000000 00:00 0",
        "7ffd41239000-7ffd4123b000 r-xp 00000000 00:00 0        [vdso]",
    ]

    @Test func findsReadOnlyFileMappingsAndTheirPrivateCopies() {
        let mappings = StartupMemoryTrim.parse(smaps: Self.smaps)
        #expect(mappings.count == 6)
        #expect(mappings.map(\.isReadOnlyFile) == [true, true, false, true, false, false])
        #expect(mappings.map(\.privateCopiesKiB) == [0, 820, 360, 4, 0, 0])
        #expect(mappings[0].start == 0x55f2580a8000 && mappings[0].end == 0x55f259bdb000)
    }

    @Test func onlyCleanCodeIsTrimmed() {
        // Dirty page-cache pages (a fresh build) are trimmed; RELRO copies and swapped pages are not.
        let trimmed = StartupMemoryTrim.parse(smaps: Self.smaps).filter(StartupMemoryTrim.isSafeToTrim)
        #expect(trimmed.map(\.start) == [0x55f2580a8000])
    }
}
