import Hummingbird

/// Requests that change the mesh (every method but GET and HEAD) carry the
/// admin token as `Authorization: Bearer <token>`; reading needs none,
/// except `/api/v1/requests/…`: request records hold callers' identities
/// and paths, and each lookup makes the control plane call every sidecar.
/// In development mode there is no token and nothing is asked.
struct AdminAuthorization: RouterMiddleware {
    typealias Context = BasicRequestContext

    let token: AdminToken?

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let isReading = request.method == .get || request.method == .head
        guard let token, !isReading || request.uri.path.hasPrefix(Self.requestRecordsPath) else {
            return try await next(request, context)
        }
        let presented = request.headers[.authorization].flatMap { value in
            value.hasPrefix("Bearer ") ? String(value.dropFirst("Bearer ".count)) : nil
        }
        guard let presented, token.matches(presented) else {
            return JSONResponse.error(
                .unauthorized,
                "this request needs the admin token (the file admin-token in the control plane's "
                    + "--data-dir) as \"Authorization: Bearer <token>\"; the CLI reads it from SWIFTMESH_ADMIN_TOKEN, "
                    + "--admin-token-file, or .swiftmesh/admin-token")
        }
        return try await next(request, context)
    }

    static let requestRecordsPath = "/api/v1/requests/"
}
