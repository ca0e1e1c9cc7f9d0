/// One instance of a service as the registry keeps it: where its sidecar
/// is reached, how, and its labels (zone, version, ...).
public struct RegisteredInstance: Sendable, Hashable {
    public struct Key: Sendable, Hashable, Comparable {
        public var address: String
        public var port: Int

        public init(address: String, port: Int) {
            self.address = address
            self.port = port
        }

        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.address, lhs.port) < (rhs.address, rhs.port)
        }
    }

    public var service: String
    public var key: Key
    /// `http1` or `http2`; traffic between sidecars is `http2`.
    public var protocolName: String
    public var labels: [String: String]

    public init(service: String, address: String, port: Int, protocolName: String, labels: [String: String] = [:]) {
        self.service = service
        key = Key(address: address, port: port)
        self.protocolName = protocolName
        self.labels = labels
    }
}
