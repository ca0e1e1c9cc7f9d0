/// Consistent hashing for ring_hash: each endpoint owns points on a 64-bit
/// ring in proportion to its weight; a request goes to the first point at or
/// after its hash. Adding or removing one endpoint moves only the requests
/// that hashed next to its points.
struct HashRing: Sendable {
    /// Points per unit of weight; enough for an even share with few endpoints.
    static let pointsPerWeight = 100
    /// Bounds memory and build time for large or heavily weighted clusters.
    static let maxPoints = 100_000

    private let hashes: [UInt64]
    private let owners: [Int]

    static let empty = HashRing(hashes: [], owners: [])

    private init(hashes: [UInt64], owners: [Int]) {
        self.hashes = hashes
        self.owners = owners
    }

    init(keys: [String], weights: [Int]) {
        let totalWeight = max(1, weights.reduce(0, +))
        let perWeight = max(1, min(Self.pointsPerWeight, Self.maxPoints / totalWeight))
        var points: [(hash: UInt64, owner: Int)] = []
        points.reserveCapacity(totalWeight * perWeight)
        for (owner, key) in keys.enumerated() {
            for replica in 0..<(weights[owner] * perWeight) {
                points.append((Self.hash("\(key)#\(replica)"), owner))
            }
        }
        points.sort { $0.hash < $1.hash }
        hashes = points.map(\.hash)
        owners = points.map(\.owner)
    }

    func endpoint(for hash: UInt64) -> Int? {
        guard !hashes.isEmpty else { return nil }
        var low = 0
        var high = hashes.count
        while low < high {
            let middle = (low + high) / 2
            if hashes[middle] < hash {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return owners[low == hashes.count ? 0 : low]
    }

    /// FNV-1a over the bytes, then a 64-bit finalizer so nearby keys
    /// (`a#1`, `a#2`) land far apart on the ring. Stable across processes,
    /// unlike Swift's seeded `Hasher`.
    static func hash(_ text: some StringProtocol) -> UInt64 {
        var value: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
        value ^= value >> 33
        value = value &* 0xFF51_AFD7_ED55_8CCD
        value ^= value >> 33
        value = value &* 0xC4CE_B9FE_1A85_EC53
        value ^= value >> 33
        return value
    }
}
