import NIOCore
import NIOHTTP2

/// The open streams of one HTTP/2 connection handler, by ID, for both sides
/// of the proxy (a client's connection, whose streams serve requests, and a
/// connection to an endpoint, whose streams serve tries): the frames the
/// codec passes up go to their stream here, once, instead of in each
/// handler.
///
/// What stays with the handler is what differs: how a stream is opened (a
/// client's HEADERS open one, an endpoint's never do), the connection's own
/// frames (SETTINGS, GOAWAY), and what a stream leaving the table means to
/// the connection (its idle timer, a drain, the pool's capacity).
///
/// Streams are held as `any HTTP2StreamOwner`, not as a generic parameter:
/// a generic table used from the handlers' modules was not specialized
/// there, and its metadata lookups per frame cost 11% of an h2c request's
/// instructions. A protocol call costs an indirect jump.
///
/// A class, and no access to its storage lasts across a call to a stream:
/// what a stream does when told something may reach the table at once (a
/// refused request resent on the same connection opens a stream in it),
/// and a struct's mutating method would hold its handler's property for the
/// whole call: overlapping accesses, which release builds here do not check
/// (`scripts/build` turns exclusivity checks off).
package final class HTTP2StreamTable {
    package typealias Stream = any HTTP2StreamOwner

    /// A frame the codec passed up, once the table has seen it.
    package enum Arrival {
        /// Delivered to its stream, or dropped with its credit returned.
        case delivered
        /// HEADERS for a stream not in the table: the handler opens one, or drops it.
        case newStream(HTTP2Frame.FramePayload.Headers)
        /// The peer reset the stream; it left the table.
        case streamReset
        /// A frame of the connection's (SETTINGS, GOAWAY, PING, ...), for the handler.
        case connectionFrame
    }

    private var streams: [HTTP2StreamID: Stream] = [:]
    /// Streams that received frames during this read, each once: their
    /// other sides are flushed when the read completes, not per frame.
    private var readInto: [Stream] = []
    private let outbox: HTTP2FrameOutbox

    package init(outbox: HTTP2FrameOutbox) {
        self.outbox = outbox
    }

    package var isEmpty: Bool { streams.isEmpty }
    package var count: Int { streams.count }
    package var all: Dictionary<HTTP2StreamID, Stream>.Values { streams.values }

    package subscript(id: HTTP2StreamID) -> Stream? { streams[id] }

    package func insert(_ stream: Stream) {
        streams[stream.stream.id] = stream
    }

    /// Takes the stream out of the table, if it is there, without telling it.
    @discardableResult
    package func remove(_ id: HTTP2StreamID) -> Stream? {
        streams.removeValue(forKey: id)
    }

    // MARK: Frames in

    /// Passes a frame the codec read to its stream.
    package func receive(_ frame: HTTP2Frame) -> Arrival {
        switch frame.payload {
        case .headers(let headers):
            guard let stream = streams[frame.streamID] else { return .newStream(headers) }
            stream.receivedHeaders(headers)
            noteRead(stream)
        case .data(let data):
            let length = HTTP2ReceiveWindow.flowControlledLength(data)
            if let stream = streams[frame.streamID] {
                stream.receivedData(data, flowControlledLength: length)
                noteRead(stream)
            } else {
                // A stream already finished with: the bytes are dropped, the credit is not.
                outbox.returnConnectionCredit(length)
            }
        case .rstStream(let code):
            guard let stream = streams.removeValue(forKey: frame.streamID) else { return .delivered }
            stream.receivedReset(code)
            return .streamReset
        default:
            return .connectionFrame
        }
        return .delivered
    }

    /// The codec closed a stream (`StreamClosedEvent`): true when it was in the table.
    package func closed(_ id: HTTP2StreamID) -> Bool {
        guard let stream = streams.removeValue(forKey: id) else { return false }
        stream.closed()
        return true
    }

    /// A stream received frames during this read.
    package func noteRead(_ stream: Stream) {
        if readInto.last !== stream {
            readInto.append(stream)
        }
    }

    /// The read completed: each stream that received frames flushes its other side once.
    package func readComplete() {
        // By index: a stream's flush may note another stream, which is flushed too.
        var index = 0
        while index < readInto.count {
            let stream = readInto[index]
            index += 1
            stream.streamReadComplete()
        }
        readInto.removeAll(keepingCapacity: true)
    }

    // MARK: The connection

    /// The socket drained: every stream may send again.
    package func connectionBecameWritable() {
        for stream in streams.values {
            stream.connectionBecameWritable()
        }
    }

    /// The endpoint's GOAWAY: the streams above `lastStreamID`, which it
    /// never processed, leave the table and hear they were refused.
    package func refuseAll(above lastStreamID: HTTP2StreamID) {
        let refused = streams.filter { $0.key > lastStreamID }
        for id in refused.keys {
            streams.removeValue(forKey: id)
        }
        for stream in refused.values {
            stream.receivedReset(.refusedStream)
        }
    }

    /// The connection is gone: every stream leaves the table and hears so.
    package func closeAll() {
        let open = streams
        streams.removeAll()
        readInto.removeAll()
        for stream in open.values {
            stream.closed()
        }
    }
}
