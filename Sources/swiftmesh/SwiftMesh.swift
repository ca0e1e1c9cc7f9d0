import ArgumentParser

@main
struct SwiftMesh: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftmesh",
        abstract: "A service mesh proxy: per-request load balancing for HTTP/1.1, HTTP/2 and gRPC.",
        subcommands: [ProxyCommand.self, ValidateCommand.self]
    )
}
