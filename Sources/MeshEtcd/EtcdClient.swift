import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import MeshConfig
import SwiftProtobuf
import Synchronization

/// A client of an etcd cluster's v3 API (gRPC, plaintext) through any of its
/// members: calls go to the member that answered last, and move to the next
/// one when it is unreachable or cannot serve (no leader, stopping), so one
/// member down costs a failed attempt, not the call.
public final class EtcdClient: Sendable {
    /// One key as etcd holds it.
    public struct KeyValue: Sendable, Equatable {
        public var key: String
        public var value: Data
        /// The revision of its last change.
        public var modRevision: Int64
        /// The lease it lives on; 0 for none.
        public var lease: Int64
    }

    /// A change to a watched key.
    public enum Event: Sendable, Equatable {
        case put(KeyValue)
        case delete(key: String)
    }

    public enum WatchEnd: Error, Sendable, Equatable {
        /// The history the watch wanted to start from was compacted: load
        /// everything again and watch from there.
        case compacted
    }

    /// The members' client addresses.
    public let endpoints: [HostPort]
    private let clients: [GRPCClient<HTTP2ClientTransport.Posix>]
    /// The member calls go to first: the one that answered last.
    private let preferred = Mutex(0)

    /// How long one attempt at one member may take.
    public static let attemptTimeout = Duration.seconds(2)

    public init(endpoints: [HostPort]) throws {
        precondition(!endpoints.isEmpty, "an etcd client needs at least one endpoint")
        self.endpoints = endpoints
        clients = try endpoints.map { endpoint in
            let target: any ResolvableTarget = if endpoint.host.contains(":") {
                .ipv6(address: endpoint.host, port: endpoint.port)
            } else if endpoint.host.allSatisfy({ $0.isNumber || $0 == "." }) {
                .ipv4(address: endpoint.host, port: endpoint.port)
            } else {
                .dns(host: endpoint.host, port: endpoint.port)
            }
            var config = HTTP2ClientTransport.Posix.Config.defaults
            // Reconnect quickly: a member that comes back is used again
            // within a second, and attempts at a down one fail at once.
            config.backoff = .init(initial: .milliseconds(100), max: .seconds(1), multiplier: 2, jitter: 0.2)
            // etcd refuses pings more often than every 5 s, and any without a
            // call: ping only under calls (the watch is one), every 30 s.
            config.connection.keepalive = .init(time: .seconds(30), timeout: .seconds(5), allowWithoutCalls: false)
            return GRPCClient(transport: try .http2NIOPosix(target: target, transportSecurity: .plaintext, config: config))
        }
    }

    /// Keeps the connections to the members until cancelled.
    public func run() async throws {
        try await withTaskCancellationHandler {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in clients {
                    group.addTask { try await client.runConnections() }
                }
                try await group.waitForAll()
            }
        } onCancel: {
            for client in clients {
                client.beginGracefulShutdown()
            }
        }
    }

    // MARK: Keys

    /// Every key that starts with `prefix`, and the revision they were read at.
    public func keys(prefix: String) async throws -> (keyValues: [KeyValue], revision: Int64) {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(prefix.utf8)
        request.rangeEnd = Self.prefixEnd(prefix)
        let response = try await call { try await Etcdserverpb_KV.Client(wrapping: $0).range(request, options: $1) }
        return (response.kvs.map(KeyValue.init), response.header.revision)
    }

    /// One key, nil when it does not exist.
    public func value(of key: String) async throws -> KeyValue? {
        var request = Etcdserverpb_RangeRequest()
        request.key = Data(key.utf8)
        return try await call { try await Etcdserverpb_KV.Client(wrapping: $0).range(request, options: $1) }
            .kvs.first.map(KeyValue.init)
    }

    /// Sets `key`, on `lease` when it is not 0 (the key goes when the lease does).
    public func put(_ key: String, _ value: Data, lease: Int64 = 0) async throws {
        var request = Etcdserverpb_PutRequest()
        request.key = Data(key.utf8)
        request.value = value
        request.lease = lease
        _ = try await call { try await Etcdserverpb_KV.Client(wrapping: $0).put(request, options: $1) }
    }

    /// A key as read for a conditional write: its value, and its last
    /// change's revision (0: it does not exist).
    public struct Read: Sendable {
        public var value: Data?
        public var modRevision: Int64
    }

    /// Each of `keys`, read at one revision.
    public func read(_ keys: [String]) async throws -> [String: Read] {
        var request = Etcdserverpb_TxnRequest()
        request.success = keys.map { key in
            var op = Etcdserverpb_RequestOp()
            op.requestRange.key = Data(key.utf8)
            return op
        }
        let response = try await call { try await Etcdserverpb_KV.Client(wrapping: $0).txn(request, options: $1) }
        var found: [String: Read] = [:]
        for (key, answer) in zip(keys, response.responses) {
            let keyValue = answer.responseRange.kvs.first
            found[key] = Read(value: keyValue?.value, modRevision: keyValue?.modRevision ?? 0)
        }
        return found
    }

    /// Sets `puts` and deletes `deletes` at once, only if none of `unchanged`
    /// changed since it was read (`Read.modRevision`); false when one did.
    public func write(
        puts: [(key: String, value: Data)], deletes: [String], ifUnchanged unchanged: [String: Read]
    ) async throws -> Bool {
        var request = Etcdserverpb_TxnRequest()
        request.compare = unchanged.map { key, read in
            var compare = Etcdserverpb_Compare()
            compare.key = Data(key.utf8)
            compare.target = .mod
            compare.result = .equal
            compare.modRevision = read.modRevision
            return compare
        }
        request.success = puts.map { pair in
            var op = Etcdserverpb_RequestOp()
            op.requestPut.key = Data(pair.key.utf8)
            op.requestPut.value = pair.value
            return op
        } + deletes.map { key in
            var op = Etcdserverpb_RequestOp()
            op.requestDeleteRange.key = Data(key.utf8)
            return op
        }
        return try await call { try await Etcdserverpb_KV.Client(wrapping: $0).txn(request, options: $1) }.succeeded
    }

    /// Sets `key` (on `lease` when not 0) unless it exists; returns what it
    /// holds afterwards (the value given, or the one another writer put first).
    @discardableResult
    public func create(_ key: String, _ value: Data, lease: Int64 = 0) async throws -> Data {
        var request = Etcdserverpb_TxnRequest()
        var absent = Etcdserverpb_Compare()
        absent.key = Data(key.utf8)
        absent.target = .create
        absent.result = .equal
        absent.createRevision = 0
        request.compare = [absent]
        var put = Etcdserverpb_RequestOp()
        put.requestPut.key = Data(key.utf8)
        put.requestPut.value = value
        put.requestPut.lease = lease
        request.success = [put]
        var get = Etcdserverpb_RequestOp()
        get.requestRange.key = Data(key.utf8)
        request.failure = [get]
        let response = try await call { try await Etcdserverpb_KV.Client(wrapping: $0).txn(request, options: $1) }
        if response.succeeded { return value }
        guard let existing = response.responses.first?.responseRange.kvs.first else {
            throw RPCError(code: .internalError, message: "etcd answered a create of \(key) with neither success nor the key")
        }
        return existing.value
    }

    /// Deletes `key`; with `onlyOnLease`, only while the key lives on that
    /// lease (nobody else has written it since).
    public func delete(_ key: String, onlyOnLease lease: Int64? = nil) async throws {
        var delete = Etcdserverpb_DeleteRangeRequest()
        delete.key = Data(key.utf8)
        guard let lease else {
            _ = try await call { try await Etcdserverpb_KV.Client(wrapping: $0).deleteRange(delete, options: $1) }
            return
        }
        var request = Etcdserverpb_TxnRequest()
        var onLease = Etcdserverpb_Compare()
        onLease.key = Data(key.utf8)
        onLease.target = .lease
        onLease.result = .equal
        onLease.lease = lease
        request.compare = [onLease]
        var op = Etcdserverpb_RequestOp()
        op.requestDeleteRange = delete
        request.success = [op]
        _ = try await call { try await Etcdserverpb_KV.Client(wrapping: $0).txn(request, options: $1) }
    }

    // MARK: Leases

    /// A new lease of `ttlSeconds`; its keys go when it is not kept alive.
    public func grantLease(ttlSeconds: Int64) async throws -> Int64 {
        var request = Etcdserverpb_LeaseGrantRequest()
        request.ttl = ttlSeconds
        let response = try await call { try await Etcdserverpb_Lease.Client(wrapping: $0).leaseGrant(request, options: $1) }
        guard response.error.isEmpty, response.id != 0 else {
            throw RPCError(code: .unavailable, message: "etcd granted no lease: \(response.error)")
        }
        return response.id
    }

    /// Renews `lease`; returns its TTL in seconds, 0 when it has expired.
    public func keepAlive(lease: Int64) async throws -> Int64 {
        let request = Etcdserverpb_LeaseKeepAliveRequest.with { $0.id = lease }
        return try await call { client, options in
            try await Etcdserverpb_Lease.Client(wrapping: client).leaseKeepAlive(
                options: options,
                requestProducer: { writer in try await writer.write(request) },
                onResponse: { response in
                    for try await answer in response.messages { return answer.ttl }
                    throw RPCError(code: .unavailable, message: "etcd closed the keep-alive stream without an answer")
                })
        }
    }

    // MARK: Watch

    /// Calls `onEvents` with every change to keys under `prefix` from
    /// revision `from` on, in order, until cancelled. Moves to another
    /// member when one fails; throws `WatchEnd.compacted` when the history
    /// from there is gone.
    public func watch(
        prefix: String, from: Int64, onEvents: @Sendable @escaping ([Event], _ revision: Int64) async -> Void
    ) async throws {
        let next = NextRevision(from)
        var failures = 0
        while !Task.isCancelled {
            let index = preferred.withLock { $0 }
            let startRevision = next.value.withLock { $0 }
            let request = Etcdserverpb_WatchRequest.with {
                $0.createRequest.key = Data(prefix.utf8)
                $0.createRequest.rangeEnd = Self.prefixEnd(prefix)
                $0.createRequest.startRevision = startRevision
            }
            let started = ContinuousClock.now
            do {
                let compacted = try await Etcdserverpb_Watch.Client(wrapping: clients[index]).watch(
                    // A member cut off from the leader cancels the watch instead
                    // of staying silent, so the watch moves to another member.
                    metadata: ["hasleader": "true"],
                    requestProducer: { writer in
                        try await writer.write(request)
                        // etcd ends a watch whose client stops sending: hold the stream open.
                        let (forever, _) = AsyncStream<Never>.makeStream()
                        for await _ in forever {}
                    },
                    onResponse: { response in
                        for try await answer in response.messages {
                            if answer.compactRevision > 0 { return true }
                            if answer.canceled {
                                throw RPCError(code: .unavailable, message: "etcd canceled the watch: \(answer.cancelReason)")
                            }
                            guard let last = answer.events.last else { continue }
                            let events: [Event] = answer.events.map { event in
                                event.type == .delete
                                    ? .delete(key: String(decoding: event.kv.key, as: UTF8.self))
                                    : .put(KeyValue(event.kv))
                            }
                            await onEvents(events, answer.header.revision)
                            // The last event's revision, not the header's: a
                            // watch catching up gets its backlog in batches,
                            // each with the store's current revision.
                            next.value.withLock { $0 = last.kv.modRevision + 1 }
                        }
                        return false
                    })
                if compacted { throw WatchEnd.compacted }
            } catch let end as WatchEnd {
                throw end
            } catch {
                if Task.isCancelled { return }
            }
            // The stream ended or failed: the next member, after a pause that
            // grows while the streams keep failing at once.
            preferred.withLock { $0 = (index + 1) % clients.count }
            failures = ContinuousClock.now - started > .seconds(5) ? 1 : failures + 1
            try await Task.sleep(for: .milliseconds(min(1000, 50 * (1 << min(failures, 5)))))
        }
    }

    // MARK: Internals

    /// Runs `body` against the preferred member, then each other member in
    /// turn while the answer is one another member may not give.
    private func call<Result: Sendable>(
        _ body: (GRPCClient<HTTP2ClientTransport.Posix>, CallOptions) async throws -> Result
    ) async throws -> Result {
        var options = CallOptions.defaults
        options.timeout = Self.attemptTimeout
        // Fail at once on a member that cannot be reached, rather than wait for it.
        options.waitForReady = false
        let first = preferred.withLock { $0 }
        var lastError: any Error = RPCError(code: .unavailable, message: "no etcd endpoint")
        for offset in 0..<clients.count {
            let index = (first + offset) % clients.count
            do {
                let result = try await body(clients[index], options)
                if offset > 0 { preferred.withLock { $0 = index } }
                return result
            } catch let error as RPCError where Self.isMemberProblem(error.code) {
                lastError = error
            }
        }
        throw EtcdUnavailable(endpoints: endpoints, lastError: lastError)
    }

    private static func isMemberProblem(_ code: RPCError.Code) -> Bool {
        [.unavailable, .deadlineExceeded, .cancelled, .unknown].contains(code)
    }

    /// The end of the range of keys that start with `prefix`: the prefix
    /// with its last byte raised by one.
    static func prefixEnd(_ prefix: String) -> Data {
        var bytes = Array(prefix.utf8)
        while let last = bytes.last {
            if last < 0xFF {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        return Data([0])
    }
}

/// Where a watch resumes: the revision after the last one it delivered,
/// shared with the stream's handler.
private final class NextRevision: Sendable {
    let value: Mutex<Int64>

    init(_ revision: Int64) {
        value = Mutex(revision)
    }
}

/// Every member failed one call.
public struct EtcdUnavailable: Error, CustomStringConvertible {
    public var endpoints: [HostPort]
    public var lastError: any Error

    public var description: String {
        "no etcd member answered (\(endpoints.map(\.description).joined(separator: ", "))): \(lastError)"
    }
}

extension EtcdClient.KeyValue {
    init(_ keyValue: Etcdserverpb_KeyValue) {
        self.init(
            key: String(decoding: keyValue.key, as: UTF8.self), value: keyValue.value,
            modRevision: keyValue.modRevision, lease: keyValue.lease)
    }
}
