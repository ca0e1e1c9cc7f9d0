import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix

/// What failed when the CLI called a server, in words: the command's error
/// says what was tried, this, and what to do, in one sentence, instead of a
/// networking library's nested error descriptions.
enum ConnectionFailure {
    static func describe(_ error: any Error) -> String {
        switch error {
        case let io as IOError:
            return describe(errno: io.errnoCode) ?? "\(io.description)"
        case let connection as NIOConnectionError:
            // Every address failed: the first one's reason stands for all.
            if let first = connection.connectionErrors.first {
                return describe(first.error)
            }
            return connection.dnsAError.map { _ in "the host name did not resolve" } ?? "no connection could be made"
        case let client as HTTPClientError:
            switch client {
            case .connectTimeout: return "no connection within the timeout (a firewall, or a host that is down)"
            case .readTimeout, .deadlineExceeded: return "connected, but no answer came in time"
            case .remoteConnectionClosed: return "the connection closed before an answer (is it an HTTP port?)"
            default: return "\(client)"
            }
        case let channel as ChannelError:
            if case .connectTimeout = channel {
                return "no connection within the timeout (a firewall, or a host that is down)"
            }
            return "\(channel)"
        default:
            return "\(error)"
        }
    }

    private static func describe(errno code: CInt) -> String? {
        switch code {
        case ECONNREFUSED: "connection refused: nothing listens there"
        case ETIMEDOUT: "no connection within the timeout (a firewall, or a host that is down)"
        case EHOSTUNREACH, ENETUNREACH: "the host cannot be reached from here"
        case ECONNRESET: "the connection was reset before an answer"
        case EADDRNOTAVAIL: "that address cannot be called from here"
        default: nil
        }
    }
}
