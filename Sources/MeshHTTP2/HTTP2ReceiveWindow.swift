import NIOHTTP2

/// Flow-control credit we owe a peer for the DATA it sent us, on a stream
/// or on the whole connection. Credit goes back (as WINDOW_UPDATE) only for
/// bytes the other side of the proxy took, and in batches of at least half
/// the window, so a fast transfer costs few frames and a stalled one stops
/// the peer after at most one window.
package struct HTTP2ReceiveWindow {
    /// The window the peer may use.
    package let size: Int
    /// Bytes consumed since the last WINDOW_UPDATE.
    private var unreturned = 0

    package init(size: Int) {
        self.size = size
    }

    /// Records `bytes` as consumed; returns the increment to send now, if any.
    package mutating func consumed(_ bytes: Int) -> Int? {
        unreturned += bytes
        guard unreturned >= size / 2, unreturned > 0 else { return nil }
        defer { unreturned = 0 }
        return unreturned
    }

    /// A DATA frame's size as flow control counts it: payload, padding and the pad-length byte.
    package static func flowControlledLength(_ data: HTTP2Frame.FramePayload.Data) -> Int {
        data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
    }
}
