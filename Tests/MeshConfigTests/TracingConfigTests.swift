import Testing
@testable import MeshConfig

@Suite("Tracing")
struct TracingConfigTests {
    @Test func offWhenAbsent() throws {
        #expect(try ConfigLoader.decode(yaml: Fixture.document()).tracing == nil)
    }

    @Test func aBaseURLGetsTheTracesPathAndEveryRequestIsSampled() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(top: "tracing: { otlpEndpoint: http://127.0.0.1:4318 }\n"))
        let tracing = try #require(config.tracing)
        #expect(tracing.tracesURL == "http://127.0.0.1:4318/v1/traces")
        #expect(tracing.samplingRate == 1 && tracing.serviceName == "swiftmesh")
    }

    @Test func aURLWithAPathIsUsedAsItIs() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(
            top: "tracing: { otlpEndpoint: \"https://collector:4318/otlp/v1/traces\", samplingRate: 0.01, serviceName: gateway }\n"))
        let tracing = try #require(config.tracing)
        #expect(tracing.tracesURL == "https://collector:4318/otlp/v1/traces")
        #expect(tracing.samplingRate == 0.01 && tracing.serviceName == "gateway")
    }

    @Test func mistakesNameTheirField() {
        #expect(onlyIssue(Fixture.document(top: "tracing: { samplingRate: 1 }\n"))?.path == "tracing.otlpEndpoint")
        #expect(onlyIssue(Fixture.document(top: "tracing: { otlpEndpoint: \"127.0.0.1:4318\" }\n"))?.message
            .contains("http://") == true)
        #expect(onlyIssue(Fixture.document(top: "tracing: { otlpEndpoint: \"http://:4318\" }\n"))?.path
            == "tracing.otlpEndpoint")
        #expect(onlyIssue(Fixture.document(top: "tracing: { otlpEndpoint: \"http://c:4318\", samplingRate: 2 }\n"))?.path
            == "tracing.samplingRate")
        #expect(onlyIssue(Fixture.document(top: "tracing: { otlpEndpoint: \"http://c:4318\", serviceName: \"\" }\n"))?.path
            == "tracing.serviceName")
        #expect(onlyIssue(Fixture.document(top: "tracing: { otlpEndpoint: \"http://c:4318\", exporter: zipkin }\n"))?.path
            == "tracing.exporter")
    }
}
