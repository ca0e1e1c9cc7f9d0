import ArgumentParser
import MeshConfig
import MeshProxy

/// `swiftmesh validate FILE`: exit 0 when the file is valid; otherwise print
/// every error with its field path and exit 1.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a proxy configuration file and print every error with its field path."
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        let config: ProxyConfig
        do {
            config = try ConfigLoader.load(path: file)
        } catch {
            ConfigErrorReport.print(error, file: file)
            throw ExitCode(1)
        }
        if let errors = ProxyServer.checkTLS(config) {
            ConfigErrorReport.print(errors, file: file)
            throw ExitCode(1)
        }
        print("\(file): valid")
    }
}

enum ConfigErrorReport {
    /// One line per issue on standard error, as `path: message`.
    static func print(_ errors: ConfigErrors, file: String) {
        var standardError = StandardError()
        let count = errors.issues.count
        Swift.print("\(file): \(count) error\(count == 1 ? "" : "s")", to: &standardError)
        for issue in errors.issues {
            Swift.print("  \(issue)", to: &standardError)
        }
    }
}
