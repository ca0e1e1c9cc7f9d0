import MeshConfig
import NIOHTTP1
import Testing

@testable import MeshProxy
@testable import MeshHTTP1

@Suite struct PathNormalizerTests {
    private let normalizer = PathNormalizer(config: PathNormalizationConfig())

    /// The target forwarded and the path decided on, or the refusal.
    private func read(_ target: String, _ config: PathNormalizationConfig = PathNormalizationConfig())
        -> (forwarded: String, path: String)? {
        switch PathNormalizer(config: config).normalize(target: target) {
        case .accepted(let forwarded, let path): (forwarded ?? target, String(path))
        case .rejected: nil
        }
    }

    private func forwarded(_ target: String, _ config: PathNormalizationConfig = PathNormalizationConfig()) -> String? {
        read(target, config)?.forwarded
    }

    /// RFC 3986 section 5.4's examples that stay within a path, through
    /// remove_dot_segments (section 5.2.4) against the base `/b/c/d;p?q`
    /// resolved by hand: the normalizer sees the merged paths.
    @Test func resolvesDotSegmentsAsRFC3986Does() {
        #expect(forwarded("/a/b/c/./../../g") == "/a/g")  // section 5.2.4's own example
        #expect(forwarded("/mid/content=5/../6") == "/mid/6")
        #expect(forwarded("/b/c/./g") == "/b/c/g")
        #expect(forwarded("/b/c/g/") == "/b/c/g/")
        #expect(forwarded("/b/c/.") == "/b/c/")
        #expect(forwarded("/b/c/./") == "/b/c/")
        #expect(forwarded("/b/c/..") == "/b/")
        #expect(forwarded("/b/c/../") == "/b/")
        #expect(forwarded("/b/c/../g") == "/b/g")
        #expect(forwarded("/b/c/../..") == "/")
        #expect(forwarded("/b/c/../../g") == "/g")
        // Abnormal examples (section 5.4.2): never above the root.
        #expect(forwarded("/b/c/../../../g") == "/g")
        #expect(forwarded("/b/c/../../../../g") == "/g")
        #expect(forwarded("/./g") == "/g")
        #expect(forwarded("/../g") == "/g")
        #expect(forwarded("/b/c/g.") == "/b/c/g.")
        #expect(forwarded("/b/c/.g") == "/b/c/.g")
        #expect(forwarded("/b/c/g..") == "/b/c/g..")
        #expect(forwarded("/b/c/..g") == "/b/c/..g")
        #expect(forwarded("/b/c/./../g") == "/b/g")
        #expect(forwarded("/b/c/g/./h") == "/b/c/g/h")
        #expect(forwarded("/b/c/g/../h") == "/b/c/h")
        #expect(forwarded("/...") == "/...")
    }

    /// Section 6.2.2: escapes of unreserved characters decoded, the rest upper-cased.
    @Test func normalizesPercentEncodingAsRFC3986Does() {
        #expect(forwarded("/%61dmin/x") == "/admin/x")
        #expect(forwarded("/%7Euser/%7euser") == "/~user/~user")
        #expect(forwarded("/a%2db%5F") == "/a-b_")
        #expect(forwarded("/a%3ab%c3%a9") == "/a%3Ab%C3%A9")
        #expect(forwarded("/file%2Etxt") == "/file.txt")
        #expect(forwarded("/a%20b") == "/a%20b")
    }

    @Test func theQueryIsLeftAsItIs() {
        #expect(read("/a/../b?x=/../%61") ?? ("", "") == ("/b?x=/../%61", "/b"))
        #expect(read("/a?b") ?? ("", "") == ("/a?b", "/a"))
    }

    @Test func slashesMergeUnlessConfiguredNot() {
        #expect(forwarded("//admin///x//") == "/admin/x/")
        #expect(forwarded("//") == "/")
        let keeping = PathNormalizationConfig(mergeSlashes: false)
        #expect(forwarded("//admin//x", keeping) == "//admin//x")
        #expect(forwarded("//admin/../x", keeping) == "//x")
    }

    @Test func escapedSlashesAreRefusedKeptOrDecodedAsConfigured() {
        #expect(forwarded("/a%2Fb") == nil)
        #expect(forwarded("/a%5cb") == nil)
        let keep = PathNormalizationConfig(escapedSlashes: .keep)
        #expect(read("/admin%2fx", keep) ?? ("", "") == ("/admin%2Fx", "/admin%2Fx"))
        let unescape = PathNormalizationConfig(escapedSlashes: .unescape)
        #expect(forwarded("/public%2F..%2Fadmin", unescape) == "/admin")
        #expect(forwarded("/a%5Cb", unescape) == "/a/b")
    }

    @Test func refusesWhatNoReadingMakesSafe() {
        #expect(forwarded("/a\\b") == nil)
        #expect(forwarded("/a#frag") == nil)
        #expect(forwarded("/a?x#frag") == nil)
        #expect(forwarded("/%2e%2e/admin") == nil)
        #expect(forwarded("/x/%2E/admin") == nil)
        #expect(forwarded("/x/.%2e/admin") == nil)
        #expect(forwarded("/public/..;/admin") == nil)
        #expect(forwarded("/public/.;x=1/admin") == nil)
        #expect(forwarded("/a%") == nil)
        #expect(forwarded("/a%4") == nil)
        #expect(forwarded("/a%zz") == nil)
    }

    /// `;` parameters travel on; routes and authorization see the path without them.
    @Test func pathParametersAreForwardedButNotDecidedOn() {
        #expect(read("/admin;x=1/y") ?? ("", "") == ("/admin;x=1/y", "/admin/y"))
        #expect(read("/admin;jsessionid=1") ?? ("", "") == ("/admin;jsessionid=1", "/admin"))
        #expect(read("/a;p/../admin;q?z") ?? ("", "") == ("/admin;q?z", "/admin"))
    }

    @Test func aSegmentOfParametersOnlyIsRefused() {
        #expect(forwarded("/;x/admin/x") == nil)
        #expect(forwarded("/public/;/admin") == nil)
    }

    /// With normalization off, authorization refuses what normalizing would change.
    @Test(arguments: [
        "/public/../admin", "/public/./x", "/public/..", "/a//b", "//admin", "/public#/../admin", "/a\\b",
        "/public/%2e%2e/admin", "/public%2Fadmin", "/x/%5C", "/x?y#z", "/%61dmin/x", "/admin;x=1/x", "/a%3ab",
    ])
    func pathsReadOtherwiseAreNotAsSent(target: String) {
        #expect(!PathNormalizer.strict.readsAsSent(target))
    }

    @Test(arguments: [
        "/", "/users/7", "/users/7/", "/user.UserService/GetUser", "/a.b/c..d/.e", "/search?q=../x", "/x%20y",
        "/x%3Ay", "*",
    ])
    func plainPathsReadAsSent(target: String) {
        #expect(PathNormalizer.strict.readsAsSent(target))
    }

    /// Nearly every path is taken as it is, without a copy.
    @Test func cleanPathsPassUnchanged() {
        for target in ["/", "/users/7", "/example.user.v1.UserService/Get", "/a/.well-known/x", "/a...b", "*"] {
            guard case .accepted(let forwarded, _) = normalizer.normalize(target: target) else {
                Issue.record("\(target) refused")
                continue
            }
            #expect(forwarded == nil, "\(target)")
        }
    }
}

@Suite struct RequestAuthorityTests {
    private func head(_ uri: String, _ fields: [(String, String)], version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .GET, uri: uri, headers: HTTPHeaders(fields))
    }

    @Test func absoluteFormBecomesOriginFormWithItsHost() {
        var request = head("http://api.example:8080/a/b?q=1", [("host", "API.example:8080")])
        #expect(RequestAuthority.check(&request) == nil)
        #expect(request.uri == "/a/b?q=1")
        #expect(request.headers["host"] == ["api.example:8080"])
        var bare = head("HTTPS://api.example", [])
        #expect(RequestAuthority.check(&bare) == nil)
        #expect(bare.uri == "/")
        #expect(bare.headers["host"] == ["api.example"])
    }

    @Test func refusesWhatMeansTwoHosts() {
        var two = head("/", [("host", "a"), ("Host", "b")])
        #expect(RequestAuthority.check(&two) != nil)
        var differs = head("http://a.example/", [("host", "b.example")])
        #expect(RequestAuthority.check(&differs) != nil)
        var userinfo = head("http://user@a.example/", [])
        #expect(RequestAuthority.check(&userinfo) != nil)
        var other = head("ftp://a.example/", [])
        #expect(RequestAuthority.check(&other) != nil)
    }

    @Test(arguments: ["a.example", "a.example:8080", "10.0.0.1", "[::1]:443", "[fd00::1]", "user-1_x.svc", "[fe80::1%25eth0]:80"])
    func validHosts(host: String) {
        #expect(RequestAuthority.isValidHost(host))
    }

    @Test(arguments: ["", "a.example, b.example", "a b", "a/b", "user@a", "a:80x", "a:123456", "[::1", "[]", "a;b", ":80"])
    func invalidHosts(host: String) {
        #expect(!RequestAuthority.isValidHost(host))
    }

    @Test func http11NeedsHostAndHTTP10DoesNot() {
        var missing = head("/", [])
        #expect(RequestAuthority.check(&missing) == "an HTTP/1.1 request without Host")
        var old = head("/", [], version: .http1_0)
        #expect(RequestAuthority.check(&old) == nil)
        var star = head("*", [("host", "a")])
        #expect(RequestAuthority.check(&star) == nil)
    }
}
