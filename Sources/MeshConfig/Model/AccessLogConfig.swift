/// One JSON line per finished request (see docs/operations.md, "Access
/// logs"); absent from the config: no access log.
public struct AccessLogConfig: Sendable, Equatable {
    public enum Destination: Sendable, Equatable {
        case standardOutput
        /// A file, created if missing and appended to.
        case file(String)

        /// As the config and the sidecar's `--access-log` spell it: `stdout` or a file path.
        public init(path: String) {
            self = path == "stdout" ? .standardOutput : .file(path)
        }

        public var path: String {
            switch self {
            case .standardOutput: "stdout"
            case .file(let path): path
            }
        }
    }

    public var destination: Destination
    /// The share of requests logged; all of them by default.
    public var sample: FaultShare

    public init(destination: Destination, samplePercent: Double = 100) {
        self.destination = destination
        sample = FaultShare(percent: samplePercent)
    }

    public var samplePercent: Double { sample.percent }
}
