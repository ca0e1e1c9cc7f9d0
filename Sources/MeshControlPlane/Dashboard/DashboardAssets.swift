import Hummingbird
import NIOCore

/// The dashboard (Dashboard/Assets: plain HTML, CSS and JavaScript that
/// polls `/api/v1/traffic` and draws SVG), compiled into the binary and
/// served on the HTTP API's port at `/dashboard`.
enum DashboardAssets {
    static let page = asset(PackageResources.dashboard_html, type: "text/html; charset=utf-8")
    static let script = asset(PackageResources.dashboard_js, type: "text/javascript; charset=utf-8")
    static let styles = asset(PackageResources.dashboard_css, type: "text/css; charset=utf-8")

    struct Asset: Sendable {
        let bytes: ByteBuffer
        let contentType: String
    }

    private static func asset(_ bytes: [UInt8], type: String) -> Asset {
        Asset(bytes: ByteBuffer(bytes: bytes), contentType: type)
    }

    static func response(_ asset: Asset) -> Response {
        Response(
            status: .ok,
            // Revalidated on every load: a control-plane upgrade shows its own dashboard.
            headers: [.contentType: asset.contentType, .cacheControl: "no-cache"],
            body: .init(byteBuffer: asset.bytes))
    }

    static func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/") { _, _ in
            Response(status: .seeOther, headers: [.location: "/dashboard"])
        }
        router.get("dashboard") { _, _ in response(page) }
        router.get("dashboard/dashboard.js") { _, _ in response(script) }
        router.get("dashboard/dashboard.css") { _, _ in response(styles) }
    }
}
