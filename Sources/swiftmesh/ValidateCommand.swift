import ArgumentParser
import MeshConfig

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
        do {
            _ = try ConfigLoader.load(path: file)
            print("\(file): valid")
        } catch {
            ConfigErrorReport.print(error, file: file)
            throw ExitCode(1)
        }
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
