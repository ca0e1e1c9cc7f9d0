import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// `--control-plane URL` and the admin token, shared by the commands that
/// talk to the control plane's HTTP API.
struct ControlPlaneAPIOptions: ParsableArguments {
    @Option(name: .long, help: "The control plane's HTTP API.")
    var controlPlane = "http://127.0.0.1:15080"

    @Option(name: .long, help: ArgumentHelp(
        "A file holding the admin token, which changes need (default: SWIFTMESH_ADMIN_TOKEN, else .swiftmesh/admin-token when it exists).",
        valueName: "file"))
    var adminTokenFile: String?

    /// The environment variable that may hold the admin token.
    static let tokenVariable = "SWIFTMESH_ADMIN_TOKEN"
    /// Where a control plane started in the same directory with the default --data-dir keeps it.
    static let defaultTokenFile = ".swiftmesh/admin-token"

    /// The admin token, if one is to be had: the file given, the
    /// environment, or the default data directory's file.
    func adminToken() throws -> String? {
        if let adminTokenFile {
            guard let data = FileManager.default.contents(atPath: adminTokenFile) else {
                throw CLIFailure("--admin-token-file: cannot read \(adminTokenFile)")
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if let value = ProcessInfo.processInfo.environment[Self.tokenVariable], !value.isEmpty {
            return value
        }
        return FileManager.default.contents(atPath: Self.defaultTokenFile).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    func validate() throws {
        guard let url = URL(string: controlPlane), url.scheme == "http", url.host != nil else {
            throw ValidationError("--control-plane: \"\(controlPlane)\" is not an http:// URL such as http://127.0.0.1:15080")
        }
    }
}

/// One request to the HTTP API and its JSON answer. A control plane that
/// cannot be reached, or that answers with an error, ends the command with
/// a message saying so and exit status 1.
struct ControlPlaneAPIClient {
    let options: ControlPlaneAPIOptions

    struct Answer {
        var status: Int
        var json: Any
        /// The body as sent, for output that keeps the JSON's own types (`-o yaml`).
        var text: String
    }

    /// What the failure says to do when the control plane cannot be reached.
    static let unreachableAdvice = "Start it (swiftmesh control-plane), or give its --http address with --control-plane URL."

    func send(
        _ method: HTTPMethod, _ path: String, body: String? = nil, unreachableAdvice: String = Self.unreachableAdvice
    ) async throws -> Answer {
        let base = options.controlPlane.hasSuffix("/") ? String(options.controlPlane.dropLast()) : options.controlPlane
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token = try options.adminToken() {
            request.headers.add(name: "authorization", value: "Bearer \(token)")
        }
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "content-type", value: "application/yaml")
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let response = try await client.execute(request, timeout: .seconds(30))
            let bytes = try await response.body.collect(upTo: 64 << 20)
            try await client.shutdown()
            let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) ?? [:]
            return Answer(status: Int(response.status.code), json: json, text: String(buffer: bytes))
        } catch {
            try? await client.shutdown()
            throw CLIFailure(
                "cannot reach the control plane at \(options.controlPlane): \(ConnectionFailure.describe(error)). "
                    + unreachableAdvice)
        }
    }

    /// The answer's JSON when the status is 2xx; otherwise a failure with the error's text and issues.
    func expectSuccess(_ answer: Answer) throws -> [String: Any] {
        let object = answer.json as? [String: Any] ?? [:]
        guard (200..<300).contains(answer.status) else {
            var lines = [(object["error"] as? String) ?? "the control plane answered \(answer.status)"]
            if let path = object["path"] as? String {
                lines[0] = "\(path): \(lines[0])"
            }
            for issue in object["issues"] as? [[String: Any]] ?? [] {
                let path = issue["path"] as? String ?? ""
                let message = issue["message"] as? String ?? ""
                lines.append(path.isEmpty ? message : "\(path): \(message)")
            }
            throw CLIFailure(lines.joined(separator: "\n"))
        }
        return object
    }
}

/// A command's failure: the message goes to standard error and the exit status is 1.
struct CLIFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }

    /// Runs `body`; a CLIFailure is printed and becomes exit status 1.
    static func reported(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as CLIFailure {
            var standardError = StandardError()
            print(failure.description, to: &standardError)
            throw ExitCode(1)
        }
    }
}
