/// One JSON line per finished request (see docs/operations.md, "Access
/// logs"); absent from the config: no access log.
public struct AccessLogConfig: Sendable, Equatable {
    public enum Destination: Sendable, Equatable {
        case standardOutput
        /// A file, created if missing and appended to.
        case file(String)
    }

    public var destination: Destination
    /// The share of requests logged, 0 to 100; 100 logs every request.
    public var samplePercent: Double

    public init(destination: Destination, samplePercent: Double = 100) {
        self.destination = destination
        self.samplePercent = samplePercent
    }
}
