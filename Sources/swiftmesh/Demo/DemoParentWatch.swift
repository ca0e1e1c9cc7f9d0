import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ties each process `swiftmesh demo` starts to the demo: the demo sets
/// `SWIFTMESH_DEMO_PARENT` to its pid in their environment, and a process
/// that finds itself with another parent (the demo was SIGKILLed, crashed,
/// or lost its terminal) sends itself SIGTERM, so it stops the way it
/// would have been stopped. Polling once a second is enough for a demo;
/// Linux's PR_SET_PDEATHSIG would need a C shim (`prctl` is variadic).
enum DemoParentWatch {
    static let variable = "SWIFTMESH_DEMO_PARENT"

    /// Starts the watch when this process was started by a demo.
    static func startIfAsked() {
        guard let value = ProcessInfo.processInfo.environment[variable], let parent = Int32(value) else { return }
        let thread = Thread {
            while getppid() == parent {
                Thread.sleep(forTimeInterval: 1)
            }
            kill(getpid(), SIGTERM)
        }
        thread.name = "demo-parent-watch"
        thread.start()
    }
}
