import NIOHPACK

/// How one connection's HEADERS blocks encode `x-request-id`.
///
/// The value is new on every request, so indexing it would only fill the
/// HPACK dynamic table with entries nobody refers to again, and NIOHPACK
/// looks fields up in that table by a linear scan. So the field goes out as a
/// literal without indexing. Such a literal still carries the field's name,
/// and `x-request-id` is not in the HPACK static table: without an entry in
/// the connection's dynamic table the name is Huffman-coded again in every
/// block, a quarter of the request id's encoding cost. So the first block on
/// a connection indexes the field; later blocks refer to its name by index
/// for as long as that entry stays in the table, and fall back to a literal
/// name once it has been evicted.
struct RequestIDIndexing {
    private var indexed = false

    /// The indexing for the request id of the next block on the connection.
    mutating func next() -> HPACKIndexing {
        if indexed {
            return .nonIndexable
        }
        indexed = true
        return .indexable
    }
}
