import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One process the demo started from this same binary (`swiftmesh
/// control-plane`, `sidecar`, `example ...`); its output goes to
/// `<name>.log` in the demo's directory. It stops by itself should the demo
/// die first (`DemoParentWatch`).
///
/// `@unchecked Sendable`: its only state is Foundation's `Process`, whose
/// pid and running state may be read from any thread.
final class DemoProcess: @unchecked Sendable {
    let name: String
    let logPath: String
    private let process = Process()

    init(name: String, arguments: [String], environment: [String: String] = [:], directory: URL) throws {
        self.name = name
        logPath = directory.appendingPathComponent("\(name).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: Self.ownExecutable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment
            .merging(environment) { $1 }
            .merging([DemoParentWatch.variable: String(getpid())]) { $1 }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }

    /// Gone at once, as a crashed host would be: no deregistration, no drain.
    func kill() {
        sendSignal(SIGKILL, to: pid)
    }

    /// SIGTERM, then SIGKILL when it has not exited within `grace`; returns once it has exited.
    func stop(grace: Duration) async {
        guard isRunning else { return }
        process.terminate()
        if await waitForExit(within: grace) { return }
        kill()
        _ = await waitForExit(within: .seconds(5))
    }

    /// Whether it exited within `limit`.
    func waitForExit(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while isRunning {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }

    /// The binary running now, so that the demo's processes are the same build.
    static var ownExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// Outside the class, whose `kill()` would hide the C function.
private func sendSignal(_ signal: Int32, to pid: Int32) {
    _ = kill(pid, signal)
}
