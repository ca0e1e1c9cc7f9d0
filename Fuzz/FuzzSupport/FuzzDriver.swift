/// What every fuzz target shares: the libFuzzer entry point and a reader
/// that turns the fuzzer's bytes into choices (a role, a split of the
/// input across reads) and the rest into the input itself.
///
/// SwiftPM links an executable target with `main` bound to
/// `<Module>_main`; a target defines that function (`@_cdecl`) and calls
/// `runFuzzer`, which hands control to libFuzzer's driver with the target's
/// check for one input.

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The check of the target being run; set once, before the driver starts.
nonisolated(unsafe) private var check: (([UInt8]) -> Void)?

/// Runs libFuzzer with the command line given to the executable (corpus
/// directories, `-max_total_time=60`, ...); `body` gets each input and
/// traps (a failed `precondition`) when an invariant does not hold.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ body: @escaping ([UInt8]) -> Void
) -> CInt {
    check = body
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        check?(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}

/// Takes choices off the front of an input.
public struct FuzzInput {
    public private(set) var bytes: ArraySlice<UInt8>

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes[...]
    }

    /// The next byte (0 once the input is used up).
    public mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    /// The rest of the input as it arrives in reads: the next byte says
    /// how many cuts (up to 15), the bytes after it where (1 to 64 bytes
    /// apart), and all that follows is the message, cut there. The same
    /// message split across reads in every way the fuzzer finds.
    public mutating func reads() -> (message: [UInt8], reads: [[UInt8]]) {
        let cuts = Int(byte() % 16)
        let sizes = (0..<cuts).map { _ in Int(byte() % 64) + 1 }
        let message = Array(bytes)
        bytes = []
        var reads: [[UInt8]] = []
        var start = 0
        for size in sizes where start < message.count {
            let end = min(message.count, start + size)
            reads.append(Array(message[start..<end]))
            start = end
        }
        if start < message.count || reads.isEmpty {
            reads.append(Array(message[start...]))
        }
        return (message, reads)
    }
}

/// Fails the run with `message` when `condition` does not hold (an
/// invariant of the target, checked in every build).
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() {
        fatalError("invariant broken: \(message())")
    }
}
