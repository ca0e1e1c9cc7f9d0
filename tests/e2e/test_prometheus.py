"""A real Prometheus server scrapes a proxy's admin /metrics; the counts are
read back through Prometheus's HTTP API, so the exposition is checked by the
parser users run, not by ours."""
from __future__ import annotations

from support.config import cluster, route, single_listener
from support.util import KeepAliveClient, wait_until


def test_prometheus_scrapes_request_counts(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [a])]))
    with KeepAliveClient(p.host, p.port) as c:
        for _ in range(7):
            assert c.get("/ok")[0] == 200
        for _ in range(3):
            assert c.get("/err?status=503")[0] == 503
    host, port = p.admin
    prom = mesh.prometheus([f"{host}:{port}"])

    def scraped():
        ok = prom.value('sum(swiftmesh_requests_total{listener="ingress",cluster="c",status_class="2xx",'
                        'direction="outbound",destination_service="c"})')
        failed = prom.value('sum(swiftmesh_requests_total{listener="ingress",status_class="5xx"})')
        return (ok, failed) == (7.0, 3.0)

    wait_until(scraped, 30, message=f"Prometheus to read 7 2xx and 3 5xx; log: {prom.log_tail()}")
    assert prom.target_health() == ["up"]
    assert prom.value('sum(swiftmesh_request_duration_seconds_count{listener="ingress"})') == 10.0
    # Every bucket of the histogram parses, up to +Inf.
    assert prom.value('sum(swiftmesh_request_duration_seconds_bucket{listener="ingress",le="+Inf"})') == 10.0
    assert prom.value('sum(swiftmesh_response_body_bytes_total{listener="ingress"})') > 0
    assert prom.value('sum(swiftmesh_downstream_connections_total{listener="ingress"})') >= 1
