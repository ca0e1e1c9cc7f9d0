import MeshConfig

/// A small, fast pseudo-random generator (SplitMix64) for decisions on the
/// data path: balancer picks, split weights, request ids. Each event loop owns
/// one, so no synchronization is needed. Not for secrets.
struct FastRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    /// Seeded from the system generator, so processes and loops differ.
    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in 0..<bound without modulo bias worth caring about at these sizes.
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }
}

extension FaultShare {
    /// Whether this draw falls within the share (fault injection, access-log sampling).
    func draw(using random: inout FastRandom) -> Bool {
        millionths >= FaultShare.whole || random.below(FaultShare.whole) < millionths
    }
}
