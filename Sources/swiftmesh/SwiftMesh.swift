import ArgumentParser

@main
struct SwiftMesh: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swiftmesh",
        abstract: "A service mesh: the proxy (standalone or as a sidecar) and the control plane that configures sidecars.",
        subcommands: [
            ProxyCommand.self, SidecarCommand.self, ControlPlaneCommand.self, ValidateCommand.self,
            ApplyCommand.self, GetCommand.self, DeleteCommand.self, RegisterCommand.self, DeregisterCommand.self,
            TokenCommand.self, TopCommand.self, ExplainCommand.self, DemoCommand.self, ExampleCommand.self,
        ]
    )

    static func main() async {
        DemoParentWatch.startIfAsked()
        await main(nil)
    }
}
