import Testing

@testable import MeshProxy

@Suite struct PrometheusExpositionTests {
    @Test func rendersCountersHistogramsAndGauges() {
        let stats = LoopStats()
        let listener = stats.label("ingress")
        let cluster = stats.label("user")
        let endpoint = stats.label("127.0.0.1:50051")
        stats.connectionOpened(listener: listener)
        stats.requestStarted(listener: listener)
        stats.requestFinished(listener: listener, cluster: cluster, endpoint: endpoint, status: StatusClass(code: 200),
                              durationNanoseconds: 3_000_000, error: nil)
        stats.requestStarted(listener: listener)
        stats.requestFinished(listener: listener, cluster: 0, endpoint: 0, status: StatusClass(code: 404),
                              durationNanoseconds: 100_000, error: .noRoute)
        let text = PrometheusExposition.render(stats.snapshot())
        #expect(text.contains(#"swiftmesh_requests_total{cluster="user",endpoint="127.0.0.1:50051",listener="ingress",status_class="2xx"} 1"#))
        #expect(text.contains(#"swiftmesh_requests_total{cluster="",endpoint="",listener="ingress",status_class="4xx"} 1"#))
        #expect(text.contains(#"swiftmesh_request_duration_seconds_bucket{cluster="user",le="0.0025",listener="ingress"} 0"#))
        #expect(text.contains(#"swiftmesh_request_duration_seconds_bucket{cluster="user",le="0.005",listener="ingress"} 1"#))
        #expect(text.contains(#"swiftmesh_request_duration_seconds_count{cluster="user",listener="ingress"} 1"#))
        #expect(text.contains(#"swiftmesh_proxy_errors_total{listener="ingress",reason="no_route"} 1"#))
        #expect(text.contains(#"swiftmesh_downstream_connections_active{listener="ingress"} 1"#))
        #expect(text.contains(#"swiftmesh_downstream_requests_active{listener="ingress"} 0"#))
    }

    @Test func statusClasses() {
        #expect(StatusClass(code: 503).label == "5xx")
        #expect(StatusClass(code: 0).label == "none")
    }
}
