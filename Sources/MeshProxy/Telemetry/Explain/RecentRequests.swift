/// The last `capacity` requests one event loop finished, oldest overwritten
/// first. Only the loop touches it; the admin API searches it on the loop.
final class RecentRequests {
    static let defaultCapacity = 1024

    private var records: [RequestRecord?]
    private var next = 0

    init(capacity: Int = RecentRequests.defaultCapacity) {
        records = Array(repeating: nil, count: capacity)
    }

    func add(_ record: RequestRecord) {
        records[next] = record
        next = (next + 1) % records.count
    }

    /// Every record with this request id, oldest first (a client may reuse an id).
    func find(_ requestID: String) -> [RequestRecord] {
        (records[next...] + records[..<next]).compactMap { $0?.requestID == requestID ? $0 : nil }
    }
}

/// Records found on a loop, handed to the admin API's task. `@unchecked
/// Sendable`: the loop lets go of the copies as it hands them over.
struct RecordsFound: @unchecked Sendable {
    let records: [RequestRecord]

    init(_ records: [RequestRecord]) {
        self.records = records
    }
}
