import ArgumentParser
import Foundation
import MeshConfig

/// `swiftmesh token create --service NAME`: a join token, with which a
/// sidecar of that service (and only that service) gets its certificates.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create join tokens: what a sidecar presents to get its service's certificates.",
        subcommands: [CreateTokenCommand.self])
}

struct CreateTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a join token for one service; the token goes to standard output, once.",
        discussion: """
            Give it to the service's sidecars with --token or SWIFTMESH_TOKEN. The control plane keeps only its \
            SHA-256, so a lost token cannot be shown again: create another.
            """)

    @Option(name: .long, help: "The service whose identity the token grants.")
    var service: String

    @Option(name: .long, help: "How long the token is valid, from 1m to 8760h.")
    var ttl = "24h"

    @OptionGroup var api: ControlPlaneAPIOptions

    func validate() throws {
        if let problem = ServiceNameSyntax.problem(service) {
            throw ValidationError("--service: \(problem)")
        }
        guard DurationSyntax.parse(ttl) != nil else {
            throw ValidationError("--ttl: \"\(ttl)\" is not a duration such as 24h")
        }
    }

    func run() async throws {
        try await CLIFailure.reported {
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["service": service, "ttl": ttl]), as: UTF8.self)
            let client = ControlPlaneAPIClient(options: api)
            let answer = try client.expectSuccess(try await client.send(.POST, "/api/v1/tokens", body: body))
            guard let token = answer["token"] as? String else {
                throw CLIFailure("the control plane answered without a token")
            }
            print(token)
            var standardError = StandardError()
            print("join token for service \(service), valid until \(answer["expiresAt"] as? String ?? "?")", to: &standardError)
        }
    }
}
