import NIOCore

/// Limits on what an HTTP/2 peer may make the proxy do for almost nothing
/// in return. Each pattern is cheap to send and costs the proxy far more:
/// - opening streams and resetting them at once ("rapid reset",
///   CVE-2023-44487): each stream starts an exchange, often an upstream
///   request, and the reset frees its slot under the stream limit at once;
/// - provoking stream errors, each answered with a RST_STREAM;
/// - empty DATA frames that do not end their stream, each a wake-up with no
///   progress.
///
/// Past a limit the connection fails with ENHANCE_YOUR_CALM. The limits
/// match what NIOHTTP2 enforced before SwiftMesh framed HTTP/2 itself.
package struct HTTP2FloodGuard {
    package static let maxResets = 200
    package static let resetWindow = TimeAmount.seconds(30)
    package static let maxSequentialEmptyData = 1

    private var resets = 0
    private var windowStart = NIODeadline.uptimeNanoseconds(0)
    private var sequentialEmptyData = 0

    /// A stream the peer reset, or one we reset for a stream error; false
    /// once there were more than `maxResets` within `resetWindow`.
    package mutating func recordReset(now: NIODeadline = .now()) -> Bool {
        if now - windowStart > Self.resetWindow {
            windowStart = now
            resets = 0
        }
        resets += 1
        return resets <= Self.maxResets
    }

    /// A DATA frame; false once more than `maxSequentialEmptyData` empty
    /// frames that do not end their stream came in a row.
    package mutating func recordData(length: Int, endStream: Bool) -> Bool {
        guard length == 0, !endStream else {
            sequentialEmptyData = 0
            return true
        }
        sequentialEmptyData += 1
        return sequentialEmptyData <= Self.maxSequentialEmptyData
    }
}
