import MeshConfig
import Testing

@testable import MeshProxy

@Suite struct PrometheusExpositionTests {
    private static func finished(
        _ stats: LoopStats, listener: Int, direction: TrafficDirection = .outbound, cluster: Int, service: Int,
        endpoint: Int, status: Int, grpcStatus: UInt8 = FinishedRequest.noGRPCStatus, nanoseconds: Int64,
        bytes: (Int, Int) = (0, 0), error: ProxyError? = nil, reachedEndpoint: Bool = true
    ) {
        stats.requestStarted(listener: listener)
        stats.requestFinished(FinishedRequest(
            route: .init(listener: listener, direction: direction, cluster: cluster, service: service),
            reachedEndpoint: reachedEndpoint, endpoint: endpoint, status: StatusClass(code: status), grpcStatus: grpcStatus,
            durationNanoseconds: nanoseconds, bytesReceived: bytes.0, bytesSent: bytes.1, error: error))
    }

    @Test func rendersCountersHistogramsAndGauges() {
        let stats = LoopStats()
        let listener = stats.label("ingress")
        let cluster = stats.label("user")
        let endpoint = stats.label("127.0.0.1:50051")
        stats.connectionOpened(listener: listener)
        Self.finished(stats, listener: listener, cluster: cluster, service: cluster, endpoint: endpoint, status: 200,
                      nanoseconds: 3_000_000, bytes: (10, 2000))
        Self.finished(stats, listener: listener, cluster: 0, service: 0, endpoint: 0, status: 404,
                      nanoseconds: 100_000, error: .noRoute)
        let text = PrometheusExposition.render(stats.snapshot())
        let route = #"cluster="user",destination_service="user",direction="outbound""#
        #expect(text.contains(#"swiftmesh_requests_total{"# + route
            + #",endpoint="127.0.0.1:50051",grpc_status="",listener="ingress",status_class="2xx"} 1"#))
        #expect(text.contains(
            #"swiftmesh_requests_total{cluster="",destination_service="",direction="outbound",endpoint="",grpc_status="",listener="ingress",status_class="4xx"} 1"#))
        #expect(text.contains(#"swiftmesh_request_duration_seconds_bucket{"# + route + #",le="0.0025",listener="ingress"} 0"#))
        #expect(text.contains(#"swiftmesh_request_duration_seconds_bucket{"# + route + #",le="0.005",listener="ingress"} 1"#))
        #expect(text.contains(#"swiftmesh_request_duration_seconds_count{"# + route + #",listener="ingress"} 1"#))
        #expect(text.contains(#"swiftmesh_request_body_bytes_total{"# + route + #",listener="ingress"} 10"#))
        #expect(text.contains(#"swiftmesh_response_body_bytes_total{"# + route + #",listener="ingress"} 2000"#))
        #expect(text.contains(#"swiftmesh_proxy_errors_total{listener="ingress",reason="no_route"} 1"#))
        #expect(text.contains(#"swiftmesh_downstream_connections_active{listener="ingress"} 1"#))
        #expect(text.contains(#"swiftmesh_downstream_requests_active{listener="ingress"} 0"#))
    }

    @Test func labelsGRPCStatusDirectionAndDestinationService() {
        let stats = LoopStats()
        let listener = stats.label("inbound")
        let cluster = stats.label("user-v2")
        let service = stats.label("user")
        Self.finished(stats, listener: listener, direction: .inbound, cluster: cluster, service: service, endpoint: 0,
                      status: 200, grpcStatus: 14, nanoseconds: 1000)
        let text = PrometheusExposition.render(stats.snapshot())
        #expect(text.contains(
            #"swiftmesh_requests_total{cluster="user-v2",destination_service="user",direction="inbound",endpoint="",grpc_status="14",listener="inbound",status_class="2xx"} 1"#))
    }

    /// What a sidecar reports to the control plane: per direction and
    /// service, then apart the outbound calls no endpoint took, which no
    /// instance will report.
    @Test func trafficTotalsReportCallsTheProxyAnsweredApart() throws {
        let stats = LoopStats()
        let listener = stats.label("outbound_user")
        let cluster = stats.label("user")
        let service = stats.label("user")
        Self.finished(stats, listener: listener, cluster: cluster, service: service, endpoint: 0, status: 200,
                      grpcStatus: 0, nanoseconds: 1000)
        // A fault abort: gRPC INTERNAL in a 200, before any endpoint.
        Self.finished(stats, listener: listener, cluster: cluster, service: service, endpoint: 0, status: 200,
                      grpcStatus: 13, nanoseconds: 1000, error: .faultAbort(.grpcStatus(13)), reachedEndpoint: false)
        // The client went away before an endpoint took it: not a failure, still a call.
        Self.finished(stats, listener: listener, cluster: cluster, service: service, endpoint: 0, status: 0,
                      nanoseconds: 1000, reachedEndpoint: false)
        let totals = stats.snapshot().trafficTotals
        #expect(totals.count == 2)
        let all = try #require(totals.first { !$0.answeredByProxy })
        #expect(all.service == "user" && all.direction == .outbound && all.requests == 3 && all.failures == 1)
        let unsent = try #require(totals.first { $0.answeredByProxy })
        #expect(unsent.service == "user" && unsent.requests == 2 && unsent.failures == 1)
        #expect(unsent.bucketCounts.reduce(0, +) == 2)
    }

    /// Inbound requests are the instance's own: none is reported apart.
    @Test func inboundRequestsAreNeverReportedApart() {
        let stats = LoopStats()
        let listener = stats.label("inbound")
        let service = stats.label("user")
        Self.finished(stats, listener: listener, direction: .inbound, cluster: 0, service: service, endpoint: 0,
                      status: 403, nanoseconds: 1000, error: .forbidden, reachedEndpoint: false)
        let totals = stats.snapshot().trafficTotals
        #expect(totals.count == 1 && totals[0].direction == .inbound && totals[0].requests == 1)
    }

    @Test func countsHandshakesConnectsAndTimeouts() {
        let stats = LoopStats()
        let listener = stats.label("inbound")
        let cluster = stats.label("user")
        stats.downstreamHandshake(listener: listener, succeeded: true)
        stats.downstreamHandshake(listener: listener, succeeded: false)
        stats.upstreamConnect(cluster: cluster, succeeded: true)
        stats.upstreamHandshake(cluster: cluster, succeeded: false)
        stats.timedOut(cluster: cluster, kind: "per_try")
        let text = PrometheusExposition.render(stats.snapshot())
        #expect(text.contains(#"swiftmesh_downstream_tls_handshakes_total{listener="inbound",result="success"} 1"#))
        #expect(text.contains(#"swiftmesh_downstream_tls_handshakes_total{listener="inbound",result="failure"} 1"#))
        #expect(text.contains(#"swiftmesh_upstream_connections_total{cluster="user",result="success"} 1"#))
        #expect(text.contains(#"swiftmesh_upstream_tls_handshakes_total{cluster="user",result="failure"} 1"#))
        #expect(text.contains(#"swiftmesh_cluster_timeouts_total{cluster="user",timeout="per_try"} 1"#))
    }

    @Test func statusClasses() {
        #expect(StatusClass(code: 503).label == "5xx")
        #expect(StatusClass(code: 0).label == "none")
    }
}
