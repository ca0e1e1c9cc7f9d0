import ArgumentParser
import Logging
import MeshConfig

/// Addresses on the command line: `host:port` or `[v6]:port`, as in config files.
extension HostPort: ExpressibleByArgument {
    public init?(argument: String) {
        guard let parsed = HostPortSyntax.parse(argument) else { return nil }
        self = parsed
    }
}

extension UpstreamProtocol: ExpressibleByArgument {}
extension ListenerTLSMode: ExpressibleByArgument {}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Durations on the command line, as in config files: `250ms`, `1s`.
struct DurationArgument: ExpressibleByArgument {
    var duration: MeshDuration

    init?(argument: String) {
        guard let parsed = DurationSyntax.parse(argument) else { return nil }
        duration = parsed
    }
}

enum CommandLineChecks {
    /// A listen address must be an IP literal: a name could resolve to
    /// several addresses, or to none at the moment of binding.
    static func listenAddress(_ address: HostPort, option: String) throws {
        guard HostPortSyntax.isIPLiteral(address.host) else {
            throw ValidationError("\(option): \"\(address.host)\" is a host name; listen on an IP address such as 127.0.0.1 or 0.0.0.0")
        }
    }
}

/// Log lines go to standard error at `level`, for every command that runs a server.
enum LogSetup {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}
