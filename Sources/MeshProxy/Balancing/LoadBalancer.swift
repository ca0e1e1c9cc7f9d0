import MeshConfig

/// Picks an endpoint for each request. A plain value: the cluster owns one per
/// event loop (as Envoy keeps one balancer per worker), passes in the random
/// source and each endpoint's in-flight count, and rebuilds it when the
/// endpoints change. Indices refer to the endpoint list it was built from.
struct LoadBalancer: Sendable {
    let policy: LoadBalancingPolicy
    let weights: [Int]
    private let equalWeights: Bool
    private let totalWeight: Int
    /// round_robin with equal weights: the next index.
    private var cursor: Int
    /// round_robin with weights: smooth weighted round robin's running scores.
    private var scores: [Int]
    /// random: running sums of the weights, for a binary search.
    private let cumulativeWeights: [Int]
    /// ring_hash: points on the ring, sorted by hash.
    private let ring: HashRing

    /// - Parameters:
    ///   - keys: a stable identity per endpoint (its address), so every loop and
    ///     every process builds the same hash ring.
    ///   - weights: positive relative shares, one per key.
    init(policy: LoadBalancingPolicy, keys: [String], weights: [Int], random: inout FastRandom) {
        precondition(keys.count == weights.count)
        self.policy = policy
        self.weights = weights
        let first = weights.first ?? 1
        equalWeights = weights.allSatisfy { $0 == first }
        totalWeight = weights.reduce(0, +)
        // Start each loop's rotation at a different endpoint, so that a few
        // requests spread over loops do not all land on the first endpoint.
        cursor = weights.isEmpty ? 0 : random.below(weights.count)
        scores = Array(repeating: 0, count: weights.count)
        var sum = 0
        cumulativeWeights = weights.map { weight in
            sum += weight
            return sum
        }
        ring = policy == .ringHash ? HashRing(keys: keys, weights: weights) : HashRing.empty
    }

    var isEmpty: Bool { weights.isEmpty }

    /// The endpoint index for one request, nil when there are no endpoints.
    /// - Parameters:
    ///   - hash: ring_hash only: the hash of the request's `hashHeader` value; without one, a random endpoint.
    ///   - inFlight: least_request only: requests in flight to an endpoint.
    mutating func pick(hash: UInt64?, random: inout FastRandom, inFlight: (Int) -> Int) -> Int? {
        let count = weights.count
        guard count > 0 else { return nil }
        if count == 1 { return 0 }
        switch policy {
        case .roundRobin:
            return equalWeights ? nextInRotation(count) : nextSmoothWeighted()
        case .leastRequest:
            return powerOfTwoChoices(count, random: &random, inFlight: inFlight)
        case .random:
            return weightedRandom(random: &random)
        case .ringHash:
            if let hash, let index = ring.endpoint(for: hash) {
                return index
            }
            return weightedRandom(random: &random)
        }
    }

    private mutating func nextInRotation(_ count: Int) -> Int {
        let index = cursor
        cursor = cursor + 1 == count ? 0 : cursor + 1
        return index
    }

    /// Smooth weighted round robin: every pick raises each score by its weight
    /// and lowers the winner by the total, interleaving heavy endpoints with
    /// light ones instead of sending them bursts.
    private mutating func nextSmoothWeighted() -> Int {
        var best = 0
        for index in scores.indices {
            scores[index] += weights[index]
            if scores[index] > scores[best] {
                best = index
            }
        }
        scores[best] -= totalWeight
        return best
    }

    /// Two random endpoints; the one with fewer requests in flight per unit of weight wins.
    private func powerOfTwoChoices(_ count: Int, random: inout FastRandom, inFlight: (Int) -> Int) -> Int {
        let first = random.below(count)
        var second = random.below(count - 1)
        if second >= first {
            second += 1
        }
        // Compare inFlight/weight without division.
        let firstLoad = inFlight(first) * weights[second]
        let secondLoad = inFlight(second) * weights[first]
        return secondLoad < firstLoad ? second : first
    }

    private func weightedRandom(random: inout FastRandom) -> Int {
        if equalWeights {
            return random.below(weights.count)
        }
        let draw = random.below(totalWeight)
        // First index whose running sum exceeds the draw.
        var low = 0
        var high = cumulativeWeights.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulativeWeights[middle] > draw {
                high = middle
            } else {
                low = middle + 1
            }
        }
        return low
    }
}
