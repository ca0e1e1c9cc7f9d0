import NIOCore

/// The `grpc-timeout` request header (gRPC over HTTP/2 spec): at most 8
/// digits and a unit, `H`, `M`, `S`, `m` (milliseconds), `u` or `n`. A
/// client's deadline bounds its request at the proxy, and the time left is
/// what the endpoint is told.
enum GRPCTimeout {
    static let header = "grpc-timeout"

    /// The timeout a value states; nil when it is not valid.
    static func parse(_ value: String) -> TimeAmount? {
        let bytes = value.utf8
        guard let unit = bytes.last, (2...9).contains(bytes.count) else { return nil }
        var amount: Int64 = 0
        for byte in bytes.dropLast() {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        switch unit {
        case UInt8(ascii: "H"): return .hours(amount)
        case UInt8(ascii: "M"): return .minutes(amount)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// The finest unit in which `remaining` fits 8 digits, rounded down so the
    /// endpoint never believes it has more time than it does.
    static func format(_ remaining: TimeAmount) -> String {
        let nanoseconds = max(remaining.nanoseconds, 0)
        let units: [(divisor: Int64, unit: String)] = [
            (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"),
        ]
        for (divisor, unit) in units where nanoseconds / divisor < 100_000_000 {
            return "\(nanoseconds / divisor)\(unit)"
        }
        return "\(min(nanoseconds / 3_600_000_000_000, 99_999_999))H"
    }
}
