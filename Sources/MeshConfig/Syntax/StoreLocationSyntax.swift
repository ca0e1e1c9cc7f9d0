/// Where the control plane keeps its state (`swiftmesh control-plane --store`).
public enum StoreLocation: Sendable, Equatable {
    /// The embedded default: `state.sqlite` in the data directory, for one control plane.
    case sqlite
    /// An etcd cluster (v3 API) shared by every control-plane replica, its
    /// members' client addresses, and the prefix of every key.
    case etcd(endpoints: [HostPort], prefix: String)

    public static let defaultEtcdPrefix = "/swiftmesh/"
}

/// `sqlite`, or `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`.
public enum StoreLocationSyntax {
    /// The location `text` names, or why it names none, worded for an error message.
    public static func check(_ text: String) -> Result<StoreLocation, SyntaxProblem> {
        if text == "sqlite" { return .success(.sqlite) }
        guard text.hasPrefix("etcd://") else {
            return .failure(SyntaxProblem("\"\(text)\" is neither sqlite nor etcd://HOST:PORT[,HOST:PORT...]"))
        }
        let rest = text.dropFirst("etcd://".count)
        let (members, path) = rest.firstIndex(of: "/").map { (rest[..<$0], rest[$0...]) } ?? (rest, "")
        var endpoints: [HostPort] = []
        for member in members.split(separator: ",", omittingEmptySubsequences: false) {
            guard let endpoint = HostPortSyntax.parse(String(member)) else {
                return .failure(SyntaxProblem(
                    "\"\(member)\" is not an etcd member's HOST:PORT, such as 127.0.0.1:2379; separate members with commas"))
            }
            endpoints.append(endpoint)
        }
        if endpoints.isEmpty {
            return .failure(SyntaxProblem("name at least one etcd member, such as etcd://127.0.0.1:2379"))
        }
        let prefix = path.isEmpty || path == "/" ? StoreLocation.defaultEtcdPrefix : path.hasSuffix("/") ? String(path) : path + "/"
        return .success(.etcd(endpoints: endpoints, prefix: prefix))
    }
}

/// Why a value does not parse, worded for an error message.
public struct SyntaxProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
