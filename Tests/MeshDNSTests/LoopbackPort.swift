import NIOCore
import NIOPosix

/// A UDP port on 127.0.0.1 that was free a moment ago: bound to port 0 so the
/// kernel picks it, then released for a server (or for nobody, to test silence).
func freeLoopbackUDPPort() async throws -> Int {
    let channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0)
        .get()
    let port = channel.localAddress?.port
    try await channel.close()
    guard let port else {
        throw LoopbackPortError()
    }
    return port
}

struct LoopbackPortError: Error, CustomStringConvertible {
    var description: String { "the kernel did not report the port of a UDP socket bound to 127.0.0.1:0" }
}
