import Testing
@testable import MeshConfig

@Suite("Duration syntax")
struct DurationSyntaxTests {
    @Test(arguments: [
        ("250ms", Int64(250_000_000)),
        ("2s", 2_000_000_000),
        ("1m", 60_000_000_000),
        ("1h", 3_600_000_000_000),
        ("1m30s", 90_000_000_000),
        ("1h2m3s4ms5us6ns", 3_723_004_005_006),
        ("0s", 0),
        ("90s", 90_000_000_000),
        ("1500ms", 1_500_000_000),
        ("7ns", 7),
        ("15us", 15_000),
    ])
    func parses(text: String, nanoseconds: Int64) {
        #expect(DurationSyntax.parse(text) == MeshDuration(nanoseconds: nanoseconds))
    }

    @Test(arguments: [
        "", "s", "15", "1.5s", "-1s", "+1s", "1 s", " 1s", "1s ", "1S", "1sec", "1d",
        "30s1m", "1s1s", "1ms1s", "1m 30s", "99999999999h",
    ])
    func rejects(text: String) {
        #expect(DurationSyntax.parse(text) == nil)
    }

    @Test(arguments: [
        (Int64(0), "0s"),
        (250_000_000, "250ms"),
        (2_000_000_000, "2s"),
        (90_000_000_000, "1m30s"),
        (1_500_000_000, "1s500ms"),
        (3_600_000_000_000, "1h"),
        (86_400_000_000_000, "24h"),
        (1_001, "1us1ns"),
    ])
    func formats(nanoseconds: Int64, text: String) {
        #expect(DurationSyntax.format(MeshDuration(nanoseconds: nanoseconds)) == text)
        #expect(MeshDuration(nanoseconds: nanoseconds).description == text)
    }

    @Test func formatReadsBackToTheSameValue() {
        var value: Int64 = 1
        while value < Int64.max / 7 {
            let duration = MeshDuration(nanoseconds: value)
            #expect(DurationSyntax.parse(DurationSyntax.format(duration)) == duration)
            value = value * 7 + 3
        }
        let largest = MeshDuration(nanoseconds: .max)
        #expect(DurationSyntax.parse(DurationSyntax.format(largest)) == largest)
    }

    @Test func negativeDurationsFormatWithASign() {
        #expect(DurationSyntax.format(.milliseconds(-1500)) == "-1s500ms")
        #expect(DurationSyntax.format(MeshDuration(nanoseconds: .min)).hasPrefix("-2562047h"))
    }
}
