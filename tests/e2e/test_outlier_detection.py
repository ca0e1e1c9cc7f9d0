"""Outlier detection (`clusters[].outlierDetection`) against real peers: an
endpoint that fails its requests is ejected after `consecutiveErrors`
failures, gets (almost) no requests while ejected, and returns by itself
once its ejection ends; the panic threshold spreads load over every
endpoint again when too few are left."""
from __future__ import annotations

import copy

from support.config import cluster, route, single_listener
from support.util import KeepAliveClient, wait_until


def metric(p, name: str, **labels) -> float:
    return sum(value for n, l, value in p.metrics() if n == name and all(l.get(k) == v for k, v in labels.items()))


def endpoint_state(p, cluster_name: str, address: str) -> dict:
    clusters = p.admin_json("/clusters")["clusters"]
    return next(e for e in next(c for c in clusters if c["name"] == cluster_name)["endpoints"] if e["address"] == address)


def ejected(p, cluster_name: str) -> list[str]:
    clusters = p.admin_json("/clusters")["clusters"]
    return sorted(e["address"] for e in next(c for c in clusters if c["name"] == cluster_name)["endpoints"] if e["ejected"])


def test_a_failing_endpoint_is_ejected_then_returns_by_itself(mesh):
    sick, well1, well2 = mesh.http_backends("sick", "well1", "well2")
    sick.fail_status = 503
    p = mesh.proxy(single_listener(
        [route("app")],
        [cluster("app", [sick, well1, well2], outlierDetection={
            "consecutiveErrors": 5, "interval": "200ms", "baseEjectionTime": "3s", "maxEjectionPercent": 50})]))
    with KeepAliveClient(p.host, p.port) as client:
        # Round robin reaches the sick endpoint every third request or so.
        wait_until(lambda: client.get("/warm")[0] and sick.count >= 5, timeout=10, interval=0,
                   message="five requests to the sick endpoint")
        wait_until(lambda: ejected(p, "app") == [sick.address], timeout=5, message="the sick endpoint ejected")
        state = endpoint_state(p, "app", sick.address)
        assert state["ejections"] == 1
        assert sick.count == 5, "ejected at the fifth failure in a row"

        before = sick.count
        statuses = [client.get(f"/while-ejected/{i}")[0] for i in range(300)]
        assert statuses == [200] * 300
        assert sick.count - before <= 3, "at most 1% of requests while ejected"
        assert metric(p, "swiftmesh_cluster_outlier_ejections_total", cluster="app", reason="consecutive_errors") == 1
        assert metric(p, "swiftmesh_cluster_endpoints_ejected", cluster="app") == 1

        # Recovered: back in service once its ejection ends, without any request needed.
        sick.fail_status = None
        wait_until(lambda: ejected(p, "app") == [], timeout=10, message="the ejection to end")
        before = sick.count
        statuses = [client.get(f"/after/{i}")[0] for i in range(30)]
        assert statuses == [200] * 30
        assert sick.count - before >= 5, "the endpoint takes its share again"


def test_the_panic_threshold_spreads_load_when_too_few_endpoints_are_left(mesh):
    sick1, sick2, well = mesh.http_backends("sick1", "sick2", "well")
    sick1.fail_status = sick2.fail_status = 503
    detection = {"consecutiveErrors": 2, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 100}
    p = mesh.proxy(single_listener(
        [route("panicky", match={"pathPrefix": "/panicky/"}), route("strict", match={"pathPrefix": "/strict/"})],
        [cluster("panicky", [sick1, sick2, well], outlierDetection=detection),
         cluster("strict", [sick1, sick2, well], outlierDetection=detection, panicThreshold=0)]))
    with KeepAliveClient(p.host, p.port) as client:
        for name in ("panicky", "strict"):
            wait_until(lambda: client.get(f"/{name}/warm")[0] and len(ejected(p, name)) == 2, timeout=10, interval=0,
                       message=f"both sick endpoints of {name} ejected")
        # strict: only the endpoint left serves.
        before = (sick1.count, sick2.count, well.count)
        assert {client.get(f"/strict/{i}")[0] for i in range(30)} == {200}
        assert (sick1.count, sick2.count) == before[:2] and well.count == before[2] + 30
        # panicky: one usable endpoint of three is below 50%, so all three get requests again.
        before = (sick1.count, sick2.count, well.count)
        statuses = [client.get(f"/panicky/{i}")[0] for i in range(30)]
        assert sick1.count > before[0] and sick2.count > before[1] and well.count > before[2]
        assert statuses.count(503) == (sick1.count - before[0]) + (sick2.count - before[1])


def reload_with(p, change) -> None:
    """Rewrites the config with `change` applied to a copy of it, sends SIGHUP
    and waits for the proxy to say it reloaded."""
    config = copy.deepcopy(p.config)
    change(config)
    reloads = p.stderr_text().count("configuration reloaded")
    p.write_config(config)
    p.reload()
    wait_until(lambda: p.stderr_text().count("configuration reloaded") > reloads, timeout=10, message="the reload")


def test_a_reload_that_drops_or_changes_outlier_detection_ends_its_ejections(mesh):
    sick, well = mesh.http_backends("sick", "well")
    sick.fail_status = 503
    detection = {"consecutiveErrors": 2, "interval": "10s", "baseEjectionTime": "60s", "maxEjectionPercent": 50}
    p = mesh.proxy(single_listener(
        [route("app")],
        [cluster("app", [sick, well], outlierDetection=detection, healthCheck={"tcp": {}, "interval": "100ms"})]))
    with KeepAliveClient(p.host, p.port) as client:
        def eject() -> None:
            wait_until(lambda: client.get("/warm")[0] and ejected(p, "app") == [sick.address], timeout=10, interval=0,
                       message="the sick endpoint ejected")

        eject()
        # New settings: a new detector, starting with every endpoint in service.
        reload_with(p, lambda c: c["clusters"][0]["outlierDetection"].update(consecutiveErrors=3))
        wait_until(lambda: ejected(p, "app") == [], timeout=5, message="the ejection to end with its detector")
        eject()
        # No detection at all (health checks stay): nothing can keep it out.
        reload_with(p, lambda c: c["clusters"][0].pop("outlierDetection"))
        wait_until(lambda: ejected(p, "app") == [], timeout=5, message="the ejection to end with its detector")
        sick.fail_status = None
        before = sick.count
        wait_until(lambda: client.get("/after")[0] == 200 and sick.count > before, timeout=5, interval=0,
                   message="requests to reach the formerly ejected endpoint")
