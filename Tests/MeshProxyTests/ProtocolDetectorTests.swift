import NIOCore
import NIOEmbedded
import Testing

@testable import MeshProxy

@Suite struct ProtocolDetectorTests {
    private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func classifiesFromTheFirstBytes() {
        #expect(ProtocolDetector.detect(buffer("GET / HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) == .http2)
        #expect(ProtocolDetector.detect(buffer("PRI * HT")) == nil)
        #expect(ProtocolDetector.detect(buffer("PRX")) == nil)
        #expect(ProtocolDetector.detect(buffer("PRX / HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("GET / HTTP/1.1")) == nil)
        #expect(ProtocolDetector.detect(buffer("GET /a b HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("")) == nil)
    }

    /// A first line that is no HTTP/1 request line goes to HTTP/2, whose
    /// codec answers a broken preface with GOAWAY; HTTP/1 lines, valid or
    /// not, go to HTTP/1, whose parser answers them.
    @Test func firstLinesThatAreNeitherGoToHTTP2() {
        #expect(ProtocolDetector.detect(buffer("INVALID CONNECTION PREFACE\r\n\r\n")) == .http2)
        #expect(ProtocolDetector.detect(buffer("hello\n")) == .http2)
        #expect(ProtocolDetector.detect(buffer("GET /\r\n")) == .http2)
        #expect(ProtocolDetector.detect(buffer("GET / HTTP/2.0\r\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("G@RBAGE / HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("GET / HTTP/1.1\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("\r\nGET / HTTP/1.1\r\n")) == .http1)
        #expect(ProtocolDetector.detect(buffer("GET /" + String(repeating: "a", count: 9000))) == .http1)
        #expect(ProtocolDetector.detect(buffer("GET /" + String(repeating: "a", count: 100))) == nil)
        // Binary bytes are told at once, without waiting for a line end.
        #expect(ProtocolDetector.detect(ByteBuffer(bytes: [0x16, 0x03, 0x01, 0x02, 0x00])) == .http2)
        #expect(ProtocolDetector.detect(buffer("GET /a\u{01}")) == .http2)
        #expect(ProtocolDetector.detect(buffer("GET / XTTP\r\n")) == .http2)
        // Past the preface's first line, a broken rest is still an HTTP/2 client's.
        #expect(ProtocolDetector.detect(buffer("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")) == .http2)
    }

    /// Bytes that arrive split across reads are held, then replayed whole to the installed protocol.
    @Test func replaysBufferedBytesAfterInstalling() throws {
        let channel = EmbeddedChannel()
        var detected: ProtocolDetector.Detected?
        let detector = ProtocolDetector(idleTimeout: .seconds(60), requestHeadersTimeout: .seconds(10)) { _, protocolKind, _ in detected = protocolKind }
        try channel.pipeline.syncOperations.addHandler(detector)
        try channel.writeInbound(buffer("PRI * HTTP/2"))
        #expect(detected == nil)
        #expect(try channel.readInbound(as: ByteBuffer.self) == nil)
        try channel.writeInbound(buffer(".0\r\n\r\nSM\r\n\r\nrest"))
        #expect(detected == .http2)
        let replayed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(String(buffer: replayed) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest")
        // The detector left the pipeline: later bytes pass straight through.
        try channel.writeInbound(buffer("more"))
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "more")
        _ = try channel.finish()
    }

    /// A connection that says nothing is closed after the listener's idle timeout.
    @Test func silentConnectionsAreClosed() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(ProtocolDetector(idleTimeout: .seconds(5), requestHeadersTimeout: .seconds(10)) { _, _, _ in })
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
    }

    /// Once bytes came, the protocol must be told within the listener's
    /// requestHeadersTimeout: a request line trickled a byte at a time goes
    /// to HTTP/1.1 then (which answers 408, its head's time being up), with
    /// the time of its first byte.
    @Test func aTrickledRequestLineGoesToHTTP1AtTheRequestHeadersTimeout() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let start = channel.embeddedEventLoop.now
        var handed: (ProtocolDetector.Detected, NIODeadline)?
        let detector = ProtocolDetector(idleTimeout: .seconds(3600), requestHeadersTimeout: .seconds(10)) {
            handed = ($1, $2)
        }
        try channel.pipeline.syncOperations.addHandler(detector)
        for byte in "GET /slow".utf8 {
            try channel.writeInbound(buffer(String(UnicodeScalar(byte))))
            channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        }
        #expect(handed == nil)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(handed?.0 == .http1)
        #expect(handed?.1 == start)
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "GET /slow")
        _ = try channel.finish()
    }

    /// What could be the HTTP/2 preface, cut short, is closed at the timeout.
    @Test func aTrickledPrefaceIsClosedAtTheRequestHeadersTimeout() throws {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let detector = ProtocolDetector(idleTimeout: .seconds(3600), requestHeadersTimeout: .seconds(10)) { _, _, _ in }
        var timeouts = 0
        detector.onRequestHeadersTimeout = { timeouts += 1 }
        try channel.pipeline.syncOperations.addHandler(detector)
        try channel.writeInbound(buffer("PRI * HT"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(timeouts == 1)
    }

    @Test func http1GoesStraightThrough() throws {
        let channel = EmbeddedChannel()
        var detected: ProtocolDetector.Detected?
        try channel.pipeline.syncOperations.addHandler(ProtocolDetector(idleTimeout: .seconds(60), requestHeadersTimeout: .seconds(10)) { _, kind, _ in detected = kind })
        try channel.writeInbound(buffer("GET / HTTP/1.1\r\n\r\n"))
        #expect(detected == .http1)
        #expect(try channel.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "GET / HTTP/1.1\r\n\r\n")
        _ = try channel.finish()
    }
}
