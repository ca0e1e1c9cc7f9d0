import Foundation
import FoundationNetworking
import NIOCore
import NIOPosix
import OTel
import OurTracing
import ServiceLifecycle
import Tracing

// One span per request the way a proxy loop would make it, with
// SwiftMesh's recorder (`ours`) or with swift-distributed-tracing and
// swift-otel (`otel`): the same name, kind and attributes, exported over
// OTLP/HTTP to the counting receiver (sink.py). Spans are made on one event
// loop, `rate` per second in bursts every 10 ms, for `seconds`.
//
// usage: otelbench ours|otel SINK_PORT RATE SECONDS
// prints: mode, spans made and received, nanoseconds per span on the
// loop, and the whole process's CPU per span (export included).
let args = CommandLine.arguments
let mode = args[1], port = Int(args[2])!, rate = Int(args[3])!, seconds = Int(args[4])!
let endpoint = "http://127.0.0.1:\(port)"

func cpuNanoseconds() -> UInt64 {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1000 }
    return ns(usage.ru_utime) + ns(usage.ru_stime)
}
func monotonic() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
func sinkCount() -> Int {
    let url = URL(string: "http://127.0.0.1:\(port)/count")!
    return Int(String(decoding: (try? Data(contentsOf: url)) ?? Data(), as: UTF8.self)) ?? -1
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()

/// One request's span the way a proxy would make it with each library.
let recordOne: @Sendable (Int) -> Void
let flush: @Sendable () -> Void
switch mode {
case "ours":
    let tracer = try! loop.submit { OurLoopTracer(endpoint: endpoint, loop: loop) }.wait()
    nonisolated(unsafe) let unsafeTracer = tracer
    recordOne = { i in unsafeTracer.recordOne(requestID: "bench-\(i)") }
    flush = { unsafeTracer.flush() }
case "otel":
    var config = OTel.Configuration.default
    config.serviceName = "bench"
    config.logs.enabled = false
    // Its drop warnings would cost CPU too; the receiver's count shows drops.
    config.diagnosticLogLevel = .error
    config.metrics.enabled = false
    config.traces.sampler = .alwaysOn
    config.traces.exporter = .otlp
    config.traces.otlpExporter.protocol = .httpProtobuf
    config.traces.otlpExporter.endpoint = endpoint + "/v1/traces"
    // As SwiftMesh's recorder: a batch every 500 ms at most.
    config.traces.batchSpanProcessor.scheduleDelay = .milliseconds(500)
    let (tracer, service) = try OTel.makeTracingBackend(configuration: config)
    // Detached: top-level code is on the main actor, whose thread waits below.
    Task.detached {
        do { try await service.run() } catch { print("tracing service failed: \(error)") }
    }
    recordOne = { i in
        let span = tracer.startSpan("user.UserService/GetUser", context: .topLevel, ofKind: .client)
        span.updateAttributes { a in
            a["http.request.method"] = "POST"
            a["url.path"] = "/user.UserService/GetUser"
            a["url.scheme"] = "http"
            a["server.address"] = "user"
            a["server.port"] = 8080
            a["network.protocol.version"] = "2"
            a["http.response.status_code"] = 200
            a["network.peer.address"] = "127.0.0.1"
            a["network.peer.port"] = 9001
            a["rpc.system"] = "grpc"
            a["rpc.service"] = "user.UserService"
            a["rpc.method"] = "GetUser"
            a["rpc.grpc.status_code"] = 0
            a["swiftmesh.listener"] = "outbound"
            a["swiftmesh.cluster"] = "user"
            a["swiftmesh.endpoint"] = "127.0.0.1:9001"
            a["swiftmesh.attempts"] = 1
            a["swiftmesh.request_id"] = "bench-\(i)"
            a["swiftmesh.caller"] = "spiffe://mesh.local/ns/default/sa/gateway"
        }
        span.end()
    }
    flush = {}
default:
    fatalError("mode: ours or otel")
}

/// Waits until the sink's count stops moving for a second.
func settle() -> Int {
    var last = -1, stableSince = monotonic()
    while true {
        let now = sinkCount()
        if now != last { last = now; stableSince = monotonic() }
        if monotonic() - stableSince > 1_500_000_000 { return now }
        usleep(100_000)
    }
}

// Warm up: connections open, buffers grown.
try loop.submit { for i in 0..<2000 { recordOne(i) }; flush() }.wait()
let warm = settle()

// Paced: rate/100 spans every 10 ms on the loop, as a proxy loop serving `rate` requests/s would.
let perTick = rate / 100
let ticks = seconds * 100
let cpuStart = cpuNanoseconds()
nonisolated(unsafe) var recordingNanoseconds: UInt64 = 0
let started = monotonic()
for tick in 0..<ticks {
    let due = started + UInt64(tick) * 10_000_000
    let now = monotonic()
    if due > now { usleep(UInt32((due - now) / 1000)) }
    try loop.submit {
        let t0 = monotonic()
        for i in 0..<perTick { recordOne(tick * perTick + i) }
        recordingNanoseconds += monotonic() - t0
    }.wait()
}
try loop.submit { flush() }.wait()
let received = settle() - warm
let cpu = cpuNanoseconds() - cpuStart
let produced = ticks * perTick
print("mode=\(mode) rate=\(rate)/s seconds=\(seconds) produced=\(produced) received=\(received) "
    + "recording_ns_per_span=\(recordingNanoseconds / UInt64(produced)) "
    + "process_cpu_ns_per_span=\(cpu / UInt64(produced)) process_cpu_share=\(String(format: "%.3f", Double(cpu) / Double(seconds) / 1e9))")
exit(0)
