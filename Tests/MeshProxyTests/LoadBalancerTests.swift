import MeshConfig
import Testing

@testable import MeshProxy

@Suite struct LoadBalancerTests {
    private func picks(_ balancer: inout LoadBalancer, count: Int, random: inout FastRandom, hash: UInt64? = nil,
                       inFlight: [Int]? = nil) -> [Int] {
        (0..<count).map { _ in
            balancer.pick(hash: hash, random: &random, inFlight: { inFlight?[$0] ?? 0 }) ?? -1
        }
    }

    @Test func emptyClusterHasNoPick() {
        var random = FastRandom(seed: 1)
        for policy in LoadBalancingPolicy.allCases {
            var balancer = LoadBalancer(policy: policy, keys: [], weights: [], random: &random)
            #expect(balancer.pick(hash: 7, random: &random, inFlight: { _ in 0 }) == nil)
        }
    }

    @Test func roundRobinVisitsEveryEndpointInTurn() {
        var random = FastRandom(seed: 2)
        var balancer = LoadBalancer(policy: .roundRobin, keys: ["a", "b", "c"], weights: [1, 1, 1], random: &random)
        let sequence = picks(&balancer, count: 9, random: &random)
        #expect(Set(sequence[0..<3]) == [0, 1, 2])
        #expect(Array(sequence[0..<3]) == Array(sequence[3..<6]))
    }

    @Test func weightedRoundRobinFollowsWeightsAndInterleaves() {
        var random = FastRandom(seed: 3)
        var balancer = LoadBalancer(policy: .roundRobin, keys: ["a", "b"], weights: [1, 2], random: &random)
        let sequence = picks(&balancer, count: 300, random: &random)
        #expect(sequence.filter { $0 == 1 }.count == 200)
        // Smooth: the heavy endpoint never gets three in a row.
        for index in 2..<sequence.count {
            #expect(!(sequence[index] == 1 && sequence[index - 1] == 1 && sequence[index - 2] == 1))
        }
    }

    @Test func leastRequestPrefersTheLessLoadedOfTwo() {
        var random = FastRandom(seed: 4)
        var balancer = LoadBalancer(policy: .leastRequest, keys: ["a", "b"], weights: [1, 1], random: &random)
        let sequence = picks(&balancer, count: 50, random: &random, inFlight: [10, 0])
        #expect(sequence.allSatisfy { $0 == 1 })
    }

    @Test func leastRequestSpreadsWhenIdle() {
        var random = FastRandom(seed: 5)
        var balancer = LoadBalancer(policy: .leastRequest, keys: ["a", "b", "c"], weights: [1, 1, 1], random: &random)
        let sequence = picks(&balancer, count: 3000, random: &random)
        for endpoint in 0..<3 {
            #expect(abs(sequence.filter { $0 == endpoint }.count - 1000) < 150)
        }
    }

    @Test func randomHonorsWeights() {
        var random = FastRandom(seed: 6)
        var balancer = LoadBalancer(policy: .random, keys: ["a", "b"], weights: [3, 1], random: &random)
        let heavy = picks(&balancer, count: 4000, random: &random).filter { $0 == 0 }.count
        #expect(abs(heavy - 3000) < 200)
    }

    @Test func ringHashIsStickyAndStableAcrossBuilds() {
        var random = FastRandom(seed: 7)
        var first = LoadBalancer(policy: .ringHash, keys: ["a:1", "b:1", "c:1"], weights: [1, 1, 1], random: &random)
        var second = LoadBalancer(policy: .ringHash, keys: ["a:1", "b:1", "c:1"], weights: [1, 1, 1], random: &random)
        for user in 0..<200 {
            let hash = HashRing.hash("user-\(user)")
            let pick = first.pick(hash: hash, random: &random, inFlight: { _ in 0 })
            #expect(pick == first.pick(hash: hash, random: &random, inFlight: { _ in 0 }))
            #expect(pick == second.pick(hash: hash, random: &random, inFlight: { _ in 0 }))
        }
    }

    @Test func ringHashMovesFewKeysWhenAnEndpointLeaves() {
        let before = HashRing(keys: ["a", "b", "c", "d"], weights: [1, 1, 1, 1])
        let after = HashRing(keys: ["a", "b", "c"], weights: [1, 1, 1])
        var moved = 0
        for key in 0..<4000 {
            let hash = HashRing.hash("k\(key)")
            let owner = before.endpoint(for: hash)
            // Keys of the removed endpoint (index 3) must move; the others should stay.
            if owner != 3 && owner != after.endpoint(for: hash) {
                moved += 1
            }
        }
        #expect(moved == 0)
    }

    @Test func ringHashSharesAreRoughlyEven() {
        let ring = HashRing(keys: ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], weights: [1, 1, 1])
        var counts = [0, 0, 0]
        for key in 0..<30000 {
            counts[ring.endpoint(for: HashRing.hash("key-\(key)")) ?? 0] += 1
        }
        for count in counts {
            #expect(count > 7000 && count < 13000)
        }
    }
}
