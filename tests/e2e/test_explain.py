"""`swiftmesh explain REQUEST_ID`: each proxy keeps a ring of what it decided
for its recent requests (authorization, route, endpoints, every try with its
timings and outcome), served at its admin `/requests/{id}`; the control
plane asks every connected sidecar; every response the proxy makes itself
leads to the command."""
from __future__ import annotations

import json
import threading

from support.config import cluster, route, single_listener
from support.mesh import service_policy
from support.proxy import run_cli
from support.util import curl, wait_until


def test_a_standalone_proxy_explains_retries_and_its_own_answers(mesh):
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener(
        [route("c", match={"pathPrefix": "/api"}, retries={"attempts": 2, "on": ["retriable-status-codes"],
                                                            "retriableStatusCodes": [503],
                                                            "backoff": {"base": "5ms", "max": "10ms"}})],
        [cluster("c", [a])]))
    failed = curl(p.url("/api/err?status=503"), "-H", "x-request-id: explain-retry")
    assert failed.status == 503
    host, port = p.admin
    status, _, body = p.admin_get("/requests/explain-retry")
    assert status == 200, body
    [record] = json.loads(body)["requests"]
    assert record["route"] == "routes[0]" and record["cluster"] == "c" and record["status"] == 503
    assert record["endpoints"] == {"pickable": 1, "total": 1}
    assert record["circuitBreaker"]["requests"] == 1 and record["circuitBreaker"]["maxRequests"] == 1024
    assert [t.get("retriedBecause") for t in record["tries"]] == ["status_503", "status_503", None]
    assert all(t["endpoint"] == a.address and t["answeredMs"] >= t["startedMs"] for t in record["tries"])
    assert record["flags"] == ["retried"]

    text = run_cli("explain", "explain-retry", "--proxy", f"{host}:{port}")
    assert text.returncode == 0, text.stderr
    assert "request explain-retry: seen by 1 proxy" in text.stdout
    assert "GET /api/err  HTTP/1.1 -> 503" in text.stdout, "the path without its query, which may carry secrets"
    assert "route: routes[0] -> cluster c, 1 of 1 endpoints pickable" in text.stdout
    assert text.stdout.count("retried: status_503") == 2 and "try 3:" in text.stdout
    assert "  flags: retried\n" in text.stdout

    # The proxy's own answer leads to the command, with a generated id.
    lost = curl(p.url("/elsewhere"))
    assert lost.status == 404
    request_id = lost.header("x-request-id")
    # A standalone proxy's answer names the command that works for it: its admin listener.
    assert f"(request id {request_id}: swiftmesh explain {request_id} --proxy {host}:{port})" in lost.body.decode()
    explained = run_cli("explain", request_id, "--proxy", f"http://{host}:{port}/")
    assert "the proxy answered itself: no_route" in explained.stdout, explained.stdout
    assert "flags: no_route" in explained.stdout
    unknown = run_cli("explain", "never-sent", "--proxy", f"{host}:{port}")
    assert unknown.returncode == 1 and "no recent request with id never-sent" in unknown.stderr


def test_flags_tell_everything_the_proxy_did_to_one_request(mesh, tmp_path):
    """One request held by a fault, whose first try hangs past perTryTimeout
    and is retried, and whose second runs into the route's timeout: the
    record, explain and the access log all show the four things that
    happened, not only the last."""
    log = tmp_path / "access.log"
    a = mesh.http_backend("a")
    p = mesh.proxy(single_listener(
        [route("c", match={"pathPrefix": "/slow"}, timeout="700ms",
               fault={"delay": {"fixed": "50ms", "percent": 100}},
               retries={"attempts": 1, "on": ["reset"], "perTryTimeout": "400ms",
                        "backoff": {"base": "5ms", "max": "10ms"}})],
        [cluster("c", [a])], accessLog={"path": str(log)}))
    r = curl(p.url("/slow?sleep=5"), "-H", "x-request-id: explain-flags")
    assert r.status == 504 and r.header("swiftmesh-proxy-error") == "timeout"
    expected = ["fault_delayed", "per_try_timeout", "retried", "timeout"]
    status, _, body = p.admin_get("/requests/explain-flags")
    assert status == 200, body
    [record] = json.loads(body)["requests"]
    assert record["flags"] == expected, record
    assert [t.get("retriedBecause") for t in record["tries"]] == ["per_try_timeout", None]
    host, port = p.admin
    text = run_cli("explain", "explain-flags", "--proxy", f"{host}:{port}")
    assert "  flags: fault_delayed, per_try_timeout, retried, timeout\n" in text.stdout, text.stdout
    wait_until(lambda: log.exists() and log.read_text().count("\n") >= 1, timeout=10)
    [line] = [json.loads(text) for text in log.read_text().splitlines()]
    assert line["flags"] == expected and line["attempts"] == 2 and line["proxy_error"] == "timeout"


def test_the_circuit_breaker_as_each_request_met_it(mesh):
    """One connection and two requests allowed: a slow request holds the
    connection, a second waits for it as pending, a third is refused at
    maxRequests. Each record says how it met the cluster's breaker."""
    app = mesh.http_backend("app")
    p = mesh.proxy(single_listener(
        [route("c")], [cluster("c", [app], circuitBreaker={"maxRequests": 2, "maxConnections": 1})]), threads=1)

    def get(request_id: str, path: str) -> None:
        curl(p.url(path), "-H", f"x-request-id: {request_id}")

    holder = threading.Thread(target=get, args=("holder", "/slow?sleep=2"))
    holder.start()
    wait_until(lambda: app.count == 1, 10, message="the slow request to reach the app")
    waiter = threading.Thread(target=get, args=("waiter", "/fast"))
    waiter.start()
    wait_until(lambda: p.admin_json("/clusters")["clusters"][0]["circuitBreaker"]["pendingRequests"] == 1, 10,
               message="the second request to wait for the connection")
    refused = curl(p.url("/third"), "-H", "x-request-id: refused")
    holder.join(timeout=30)
    waiter.join(timeout=30)
    assert refused.status == 503 and refused.header("swiftmesh-proxy-error") == "overflow"

    def breaker(request_id: str) -> dict:
        [record] = json.loads(p.admin_get(f"/requests/{request_id}")[2])["requests"]
        return record["circuitBreaker"]

    assert breaker("holder")["requests"] == 1
    assert breaker("waiter") == {"requests": 2, "maxRequests": 2, "pendingRequests": 1, "maxPendingRequests": 1024}
    assert breaker("refused") == {"requests": 2, "maxRequests": 2}
    host, port = p.admin
    text = run_cli("explain", "waiter", "--proxy", f"{host}:{port}").stdout
    assert "circuit breaker: 2 of 2 requests in flight; waited for a connection as 1 of 1024 pending" in text, text
    text = run_cli("explain", "refused", "--proxy", f"{host}:{port}").stdout
    assert "circuit breaker: 2 of 2 requests in flight" in text and "the proxy answered itself: overflow" in text, text


def test_the_control_plane_finds_every_sidecar_that_saw_a_call(mesh):
    cp = mesh.control_plane(heartbeat="200ms")
    backend = mesh.http_backend("user-1")
    user = mesh.sidecar("user-1-sidecar", cp, "user", backend)
    gw = mesh.sidecar("gateway-sidecar", cp, "gateway", mesh.unused_address(), upstreams=("user",),
                      app_protocol="http1")
    wait_until(lambda: gw.endpoints("user") == [user.inbound], 10, message="the gateway to know user")
    # The user app answers 503: the gateway's sidecar retries it (its default retry policy), then gives up.
    r = curl(f"http://127.0.0.1:{gw.upstream_port('user')}/err?status=503", "-H", "x-request-id: mesh-call")
    assert r.status == 503
    assert cp.cli("explain", "mesh-call", admin=False).returncode == 1, "records need the admin token"
    answer = cp.cli("explain", "mesh-call", "-o", "json")
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout)
    by_service = {proxy["service"]: proxy for proxy in found["proxies"]}
    assert set(by_service) == {"gateway", "user"} and found["unreachable"] == []
    [outbound] = by_service["gateway"]["requests"]
    assert outbound["direction"] == "outbound" and outbound["cluster"] == "user"
    assert [t.get("retriedBecause") for t in outbound["tries"]] == ["status_503", "status_503", None]
    inbound = by_service["user"]["requests"]
    assert len(inbound) == 3 and all(r["direction"] == "inbound" for r in inbound), "each try reached the user instance"
    assert all(r.get("caller") == "spiffe://swiftmesh.local/service/gateway" for r in inbound)
    assert all(r.get("authorization") is None or r["authorization"]["decision"] == "allow" for r in inbound)

    text = cp.cli("explain", "mesh-call")
    assert "request mesh-call: seen by 2 proxies" in text.stdout, text.stdout
    assert "gateway, sidecar gateway-" in text.stdout and "user, sidecar user-" in text.stdout
    missing = cp.cli("explain", "no-such-call")
    assert missing.returncode == 1 and "no connected sidecar recorded a request with this id" in missing.stderr


def test_connection_failures_read_as_one_sentence_with_what_to_do(mesh):
    nowhere = mesh.unused_address()
    away = run_cli("explain", "some-id", "--control-plane", f"http://{nowhere}")
    assert away.returncode == 1
    message = away.stderr.strip()
    assert message == (f"cannot reach the control plane at http://{nowhere}: connection refused: nothing listens "
                       "there. Start it (swiftmesh control-plane), or give its --http address with --control-plane "
                       "URL. A standalone proxy is asked at its admin listener: swiftmesh explain some-id --proxy "
                       "HOST:PORT."), message
    no_proxy = run_cli("explain", "some-id", "--proxy", nowhere)
    assert no_proxy.returncode == 1 and no_proxy.stderr.strip() == (
        f"cannot reach the proxy's admin listener at http://{nowhere}: connection refused: nothing listens there. "
        "Give the address of the proxy's admin.listen (a sidecar's --admin) with --proxy."), no_proxy.stderr
    not_an_address = run_cli("explain", "some-id", "--proxy", "ftp://x")
    assert not_an_address.returncode != 0 and "--proxy" in not_an_address.stderr
    for args in (("get", "services"), ("top", "--once"), ("get", "sidecars")):
        failed = run_cli(*args, "--control-plane", f"http://{nowhere}")
        assert failed.returncode == 1, (args, failed.stderr)
        assert "connection refused: nothing listens there" in failed.stderr and "errno" not in failed.stderr, failed.stderr


def test_no_endpoints_says_why_each_registered_instance_was_left_out(mesh):
    """A canary split to version=v2: the only v2 instance's app is down, so
    the control plane leaves it out of the snapshot, and the v1 instance is
    outside the subset. The gateway's sidecar has no endpoint; explain says why."""
    cp = mesh.control_plane(heartbeat="200ms")
    v1 = mesh.sidecar("user-1-sidecar", cp, "user", mesh.http_backend("user-1"), labels={"version": "v1"})
    v2 = mesh.sidecar("user-2-sidecar", cp, "user", mesh.unused_address(), app_protocol="http1",
                      labels={"version": "v2"})
    gw = mesh.sidecar("gateway-sidecar", cp, "gateway", mesh.unused_address(), upstreams=("user",),
                      app_protocol="http1")

    def health() -> dict:
        return {i["address"]: i["health"] for i in cp.api("GET", "/api/v1/services/user/instances")[1]["instances"]}

    wait_until(lambda: health() == {v1.inbound: "healthy", v2.inbound: "unhealthy"}, 15,
               message="the v2 instance to be unhealthy: its app is down")
    applied = cp.cli("apply", "-f", "-", input_text=service_policy(
        "user", [{"match": {"pathPrefix": "/v2"}, "split": [{"subset": {"version": "v2"}, "weight": 1}]}]))
    assert applied.returncode == 0, applied.stderr
    wait_until(lambda: curl(f"http://127.0.0.1:{gw.upstream_port('user')}/v2/x").header("swiftmesh-proxy-error")
               == "no_endpoints", 10, message="the gateway's sidecar to apply the split")
    failed = curl(f"http://127.0.0.1:{gw.upstream_port('user')}/v2/x", "-H", "x-request-id: canary-call")
    assert failed.status == 503 and "swiftmesh explain canary-call)" in failed.body.decode()

    text = cp.cli("explain", "canary-call")
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "the proxy answered itself: no_endpoints" in out, out
    assert "route: routes[0] -> cluster user[version=v2], 0 of 0 endpoints pickable" in out, out
    assert "instances of user registered: 2; the cluster takes those labelled version=v2" in out, out
    assert f"    {v1.inbound}: outside the subset version=v2" in out, out
    assert f"    {v2.inbound}: unhealthy: its sidecar cannot reach its app" in out, out


def test_no_endpoints_names_each_endpoint_balancing_left_out(mesh):
    """The only endpoint answers 503 and is ejected; with no panic mode
    (panicThreshold 0) the next request finds nothing to pick."""
    sick = mesh.http_backend("sick")
    sick.fail_status = 503
    p = mesh.proxy(single_listener([route("c")], [cluster("c", [sick], panicThreshold=0, outlierDetection={
        "consecutiveErrors": 1, "interval": "10s", "baseEjectionTime": "30s", "maxEjectionPercent": 100})]))
    wait_until(lambda: curl(p.url("/x"), "-H", "x-request-id: after-ejection").header("swiftmesh-proxy-error")
               == "no_endpoints", 10, message="the endpoint to be ejected")
    host, port = p.admin
    text = run_cli("explain", "after-ejection", "--proxy", f"{host}:{port}").stdout
    assert "route: routes[0] -> cluster c, 0 of 1 endpoints pickable" in text, text
    assert f"left out: {sick.address}, ejected by outlier detection" in text, text
