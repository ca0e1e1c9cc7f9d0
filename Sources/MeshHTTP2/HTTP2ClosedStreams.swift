import NIOCore
import NIOHTTP2

/// What the codec remembers of streams that are no longer open, so that a
/// frame on one gets the answer RFC 9113 section 5.1 asks for:
/// - a stream the peer ended with END_STREAM: DATA or HEADERS on it is a
///   connection error STREAM_CLOSED;
/// - a stream the peer reset: a stream error STREAM_CLOSED;
/// - a stream identifier the peer skipped when it opened a higher one (it
///   closed implicitly, never opened): HEADERS on it is a connection error
///   PROTOCOL_ERROR (section 5.1.1).
///
/// Streams *we* reset are not remembered: the peer may have sent frames
/// before our RST_STREAM reached it (section 5.4.2), and those are dropped.
/// Both memories are bounded: a stream forgotten is treated as one we
/// reset, the lenient answer, so only a peer that certainly broke the rules
/// is told so.
package struct HTTP2ClosedStreams {
    package enum PeerEnding: Equatable {
        /// The peer sent END_STREAM.
        case endStream
        /// The peer sent RST_STREAM.
        case reset
    }

    /// Streams the peer closed, most recent last.
    package static let peerClosedCapacity = 32
    /// Runs of identifiers the peer skipped, most recent last.
    package static let skippedCapacity = 8

    /// A ring of the streams the peer closed: the identifier, negated when
    /// the peer reset the stream. Plain integers: noting a close is a store
    /// on every stream of every connection.
    private var peerClosed: [Int32] = []
    private var nextSlot = 0
    private var skipped = CircularBuffer<ClosedRange<Int32>>(initialCapacity: 0)

    /// The peer closed `id` (by END_STREAM seen before the stream closed, or by RST_STREAM).
    package mutating func peerClosed(_ id: HTTP2StreamID, _ ending: PeerEnding) {
        let entry = ending == .reset ? -Int32(id) : Int32(id)
        if peerClosed.count < Self.peerClosedCapacity {
            peerClosed.append(entry)
        } else {
            peerClosed[nextSlot] = entry
        }
        nextSlot = (nextSlot + 1) % Self.peerClosedCapacity
    }

    /// The peer opened `id` while `previous` was the highest it had opened:
    /// the identifiers of its kind between them closed without being used.
    package mutating func peerOpened(_ id: HTTP2StreamID, after previous: HTTP2StreamID) {
        let first = previous == .rootStream ? (id.isClientInitiated ? 1 : 2) : Int32(previous) + 2
        let last = Int32(id) - 2
        guard first <= last else { return }
        if skipped.count == Self.skippedCapacity {
            skipped.removeFirst()
        }
        skipped.append(first...last)
    }

    /// How the peer closed `id`, if it did and that is still remembered.
    package func peerEnding(of id: HTTP2StreamID) -> PeerEnding? {
        let raw = Int32(id)
        guard let entry = peerClosed.first(where: { $0 == raw || $0 == -raw }) else { return nil }
        return entry < 0 ? .reset : .endStream
    }

    /// True when the peer skipped `id` (and that is still remembered).
    package func wasSkipped(_ id: HTTP2StreamID) -> Bool {
        let raw = Int32(id)
        return skipped.contains { $0.contains(raw) && (raw - $0.lowerBound) % 2 == 0 }
    }
}
