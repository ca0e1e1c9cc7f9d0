import Foundation
import MeshDNS
import NIOCore
import NIOPosix

/// A real dnsmasq on 127.0.0.1 at a free port, answering names under `test.`
/// from a hosts file and nothing else.
final class DnsmasqServer {
    /// Where the Debian package dnsmasq-base and Homebrew put the binary.
    static let candidatePaths = ["/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq", "/opt/homebrew/sbin/dnsmasq"]

    let address: SocketAddress
    private let process: Process
    /// Finishes when Foundation has reaped the process.
    private let exited: AsyncStream<Void>
    private let directory: URL
    private let logFile: URL

    /// The command line, kept in one place because the whole-binary tests reuse it.
    ///
    /// - `--keep-in-foreground`: no fork, so the process we start is the server
    ///   and we reap it; unlike `--no-daemon` it does not switch to debug mode.
    /// - `--conf-file=/dev/null`: ignore any /etc/dnsmasq.conf on the machine.
    /// - `--listen-address=127.0.0.1 --bind-interfaces --port=N`: only loopback, only our port.
    /// - `--no-resolv --no-hosts --addn-hosts=FILE`: answer from FILE alone, never forward.
    /// - `--local=/test/`: unknown names under test. get NXDOMAIN instead of REFUSED
    ///   (there is no upstream to forward them to).
    /// - `--local-ttl=30`: hosts-file answers carry a TTL (the default is 0).
    /// - `--pid-file=` (empty): write no pid file.
    /// - `--log-facility=-`: log to stderr, which goes to a file shown when startup fails.
    /// - `--user=root` only when running as root: dnsmasq started as root would
    ///   otherwise switch to `nobody`; as another user it changes nothing.
    static func arguments(port: Int, hostsFile: String, runningAsRoot: Bool) -> [String] {
        [
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--port=\(port)",
            "--no-resolv",
            "--no-hosts",
            "--addn-hosts=\(hostsFile)",
            "--local=/test/",
            "--local-ttl=30",
            "--pid-file=",
            "--log-facility=-",
        ] + (runningAsRoot ? ["--user=root"] : [])
    }

    /// Starts dnsmasq with `hosts` as its hosts file and returns once it
    /// answers `readinessName`.
    ///
    /// The port is free when picked but could be taken by another test's
    /// socket before dnsmasq binds it; that case alone is retried, with a new
    /// port, at most three times in all.
    static func start(hosts: String, readinessName: String) async throws -> DnsmasqServer {
        var attempt = 1
        while true {
            do {
                return try await DnsmasqServer(hosts: hosts, readinessName: readinessName)
            } catch DnsmasqError.exited(_, let log) where log.contains("Address already in use") && attempt < 3 {
                attempt += 1
            }
        }
    }

    /// One start on one port, polling for at most five seconds until dnsmasq answers.
    private init(hosts: String, readinessName: String) async throws {
        guard let executable = Self.candidatePaths.first(where: FileManager.default.isExecutableFile(atPath:)) else {
            throw DnsmasqError.notInstalled
        }
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("meshdns-dnsmasq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let hostsFile = directory.appendingPathComponent("hosts")
        try hosts.write(to: hostsFile, atomically: true, encoding: .utf8)
        logFile = directory.appendingPathComponent("dnsmasq.log")
        try Data().write(to: logFile)

        let port = try await freeLoopbackUDPPort()
        address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Self.arguments(port: port, hostsFile: hostsFile.path, runningAsRoot: geteuid() == 0)
        let log = try FileHandle(forWritingTo: logFile)
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let (exited, exitedContinuation) = AsyncStream<Void>.makeStream()
        self.exited = exited
        process.terminationHandler = { _ in exitedContinuation.finish() }
        do {
            try process.run()
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
        try? log.close()
        do {
            try await waitUntilAnswering(readinessName)
        } catch {
            await stop()
            throw error
        }
    }

    /// Polls with short lookups until dnsmasq answers with addresses; fails
    /// early if it exited, with its log.
    private func waitUntilAnswering(_ name: String) async throws {
        let resolver = DNSResolver(server: address, eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw DnsmasqError.exited(status: process.terminationStatus, log: log())
            }
            if let resolution = try? await resolver.resolve(name: name, timeout: .milliseconds(200)),
                !resolution.addresses.isEmpty
            {
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw DnsmasqError.notReady(log: log())
    }

    /// Kills dnsmasq, waits until it is reaped, and removes its files.
    ///
    /// SIGKILL rather than SIGTERM: Foundation's Process does not reset the
    /// signal mask for the child, which inherits the spawning thread's, and
    /// Swift concurrency's threads block SIGTERM, so dnsmasq would never see
    /// it. dnsmasq keeps no state that needs a clean shutdown.
    ///
    /// The wait is asynchronous (the termination handler) so it never blocks
    /// a thread of the small concurrency pool.
    func stop() async {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        for await _ in exited {}
        try? FileManager.default.removeItem(at: directory)
    }

    private func log() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? "(no log)"
    }
}

enum DnsmasqError: Error, CustomStringConvertible {
    case notInstalled
    case exited(status: Int32, log: String)
    case notReady(log: String)

    var description: String {
        switch self {
        case .notInstalled:
            return "dnsmasq is not installed (looked for \(DnsmasqServer.candidatePaths.joined(separator: ", "))). "
                + "Run the project's test script, which installs it as CI does "
                + "(or install the Debian package dnsmasq-base yourself)."
        case .exited(let status, let log):
            return "dnsmasq exited with status \(status) during startup. Its log:\n\(log)"
        case .notReady(let log):
            return "dnsmasq did not answer within 5 seconds. Its log:\n\(log)"
        }
    }
}
