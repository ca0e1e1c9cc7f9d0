import Testing
@testable import MeshConfig

@Suite("Access log")
struct AccessLogConfigTests {
    @Test func offWhenAbsent() throws {
        #expect(try ConfigLoader.decode(yaml: Fixture.document()).accessLog == nil)
    }

    @Test func standardOutputLogsEveryRequestByDefault() throws {
        let config = try ConfigLoader.decode(yaml: Fixture.document(top: "accessLog: { path: stdout }\n"))
        #expect(config.accessLog == AccessLogConfig(destination: .standardOutput, samplePercent: 100))
    }

    @Test func aFileWithASample() throws {
        let config = try ConfigLoader.decode(
            yaml: Fixture.document(top: "accessLog: { path: /var/log/swiftmesh/access.log, samplePercent: 2.5 }\n"))
        #expect(config.accessLog == AccessLogConfig(destination: .file("/var/log/swiftmesh/access.log"), samplePercent: 2.5))
    }

    @Test func mistakesNameTheirField() {
        #expect(onlyIssue(Fixture.document(top: "accessLog: { path: stdout, samplePercent: 150 }\n"))?.path
            == "accessLog.samplePercent")
        #expect(onlyIssue(Fixture.document(top: "accessLog: { samplePercent: 10 }\n"))?.path == "accessLog.path")
        #expect(onlyIssue(Fixture.document(top: "accessLog: { path: stdout, format: json }\n"))?.path
            == "accessLog.format")
    }
}
