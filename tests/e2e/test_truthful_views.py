"""Requests a sidecar answers itself before any instance sees them (a
ServicePolicy's fault abort, an AuthorizationPolicy's denial) count in every
view: the sidecar's golden metrics as a real Prometheus reads them, the
control plane's live traffic, `swiftmesh top` and the dashboard in a real
browser. And an entry service, whose clients call its app directly, shows
its own calls instead of an idle row. The mesh is the example services:
a gateway app calling two user instances, each app with its sidecar."""
from __future__ import annotations

import contextlib
import json
import re
import threading

from support.browser import dashboard_dom
from support.mesh import gateway_and_two_users, service_policy
from support.util import KeepAliveClient, curl, wait_until

FAULT_POLICY = service_policy("user", [{"match": {"grpc": {"service": "example.user.v1.UserService"}},
                                         "fault": {"abort": {"grpcStatus": 13, "percent": 50}}}])

DENY_ALL = """\
apiVersion: swiftmesh.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: user-callers }
spec: { service: user, default: deny }
"""


def example_mesh(mesh):
    """A control plane, two example user instances with sidecars, and the
    example gateway with its sidecar, which its app calls user through."""
    cp = mesh.control_plane(heartbeat="200ms")
    users = []
    for n in (1, 2):
        app = mesh.example("user", f"user-{n}")
        users.append(mesh.sidecar(f"user-{n}-sidecar", cp, "user", app.address, app_protocol="http2"))
    gateway_sidecar = mesh.sidecar("gateway-sidecar", cp, "gateway", "127.0.0.1:1", upstreams=("user",),
                                   app_protocol="http1", start=False)
    gateway = mesh.example_gateway(f"127.0.0.1:{gateway_sidecar.upstream_port('user')}")
    gateway_sidecar.app = gateway.address
    gateway_sidecar.start()
    wait_until(lambda: sorted(gateway_sidecar.endpoints("user")) == sorted(u.inbound for u in users), 10,
               message="the gateway's sidecar to know both user instances")
    return cp, gateway, gateway_sidecar, users


def call_users(gateway, count: int) -> dict[int, int]:
    """`count` calls to the gateway app, as its clients make them: statuses by count."""
    statuses: dict[int, int] = {}
    for n in range(count):
        status = curl(f"http://{gateway.address}/users/{n % 1000 + 1}").status
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


@contextlib.contextmanager
def calls_continue(address: str, path: str):
    """Keeps calling `address` while the views are read, so that their
    10-second window never runs empty however slow the machine."""
    stop = threading.Event()

    def call() -> None:
        host, port = address.rsplit(":", 1)
        with KeepAliveClient(host, int(port)) as client:
            while not stop.wait(0.05):
                client.get(path)

    caller = threading.Thread(target=call)
    caller.start()
    try:
        yield
    finally:
        stop.set()
        caller.join(10)


def traffic(cp) -> tuple[dict, dict]:
    status, body = cp.api("GET", "/api/v1/traffic", admin=False)
    assert status == 200, body
    return {s["name"]: s for s in body["services"]}, {(e["from"], e["to"]): e for e in body["edges"]}


def dashboard_row(html: str, service: str) -> dict[str, str]:
    row = re.search(rf'<tr data-service="{service}" data-source="(\w*)" data-tone="(\w+)">', html)
    assert row, html[:3000]
    return {"source": row.group(1), "tone": row.group(2)}


def test_fault_aborts_count_for_the_called_service_in_every_view(mesh, tmp_path):
    cp, gateway, gateway_sidecar, users = example_mesh(mesh)
    applied = cp.cli("apply", "-f", "-", input_text=FAULT_POLICY)
    assert applied.returncode == 0, applied.stderr
    # INTERNAL reaches the gateway's clients as 502, half of the time.
    wait_until(lambda: call_users(gateway, 4).get(502), 10, message="the gateway's sidecar to apply the fault")
    host, port = gateway_sidecar.admin
    prometheus = mesh.prometheus([f"{host}:{port}"])
    # What the sidecar counted before the measured calls, as Prometheus reads it.
    aborted_query = ('sum(swiftmesh_requests_total{listener="outbound_user",direction="outbound",cluster="user",'
                     'destination_service="user",endpoint="",grpc_status="13"})')
    wait_until(lambda: prometheus.value(aborted_query) is not None, 30, message=prometheus.log_tail())
    before = prometheus.value(aborted_query)

    statuses = call_users(gateway, 100)
    aborted = statuses.get(502, 0)
    assert statuses.get(200, 0) + aborted == 100 and 15 <= aborted <= 85, statuses

    # The golden metrics: every abort, for the cluster and service it would have gone to.
    wait_until(lambda: prometheus.value(aborted_query) == before + aborted, 30,
               message=f"Prometheus to read {aborted} more aborts; {prometheus.log_tail()}")
    assert prometheus.value('sum(swiftmesh_request_duration_seconds_count{listener="outbound_user",'
                            'destination_service="user"})') >= 100
    assert prometheus.value('sum(swiftmesh_proxy_errors_total{listener="outbound_user",reason="fault_abort"})') \
        == before + aborted
    # The route matched every call.
    assert prometheus.value('sum(swiftmesh_route_matches_total{listener="outbound_user",route="0"})') >= 100

    with calls_continue(gateway.address, "/users/5"):
        assert_views_show_the_aborts(cp, tmp_path)

    # What the policy's route matched, from the sidecars' reports.
    def matched():
        policies = cp.cli("get", "policies", admin=False)
        return policies.stdout if "routes[0]=" in policies.stdout and "routes[0]=0 " not in policies.stdout else None

    table = wait_until(matched, 15, message="get policies to show what routes[0] matched")
    assert "warning" not in table, table


def assert_views_show_the_aborts(cp, tmp_path) -> None:
    # The live view: the edge and the user service both fail about as often.
    def failing():
        services, edges = traffic(cp)
        user, edge, entry = services.get("user"), edges.get(("gateway", "user")), services.get("gateway")
        rates = [row and row["successRate"] for row in (user, edge, entry)]
        return (services, edges) if all(rate is not None and rate < 0.95 for rate in rates) else None

    services, edges = wait_until(failing, 15, message=f"the live view to show the aborts: {traffic(cp)}")
    assert services["user"]["source"] == "inbound"
    # The gateway is called by its clients directly: its row is its calls to user.
    assert services["gateway"]["source"] == "outbound" and services["gateway"]["requestsPerSecond"] > 0

    top = cp.cli("top", "--once", admin=False)
    assert top.returncode == 0, top.stderr
    user_row = next(line.split() for line in top.stdout.splitlines() if line.startswith("user "))
    assert user_row[3] != "100.00%" and user_row[-1] == "inbound", top.stdout
    gateway_row = next(line.split() for line in top.stdout.splitlines() if line.startswith("gateway "))
    assert gateway_row[-1] == "outbound" and "entry service" in top.stdout, top.stdout

    html = dashboard_dom(tmp_path / "profile", cp.api_url)
    assert dashboard_row(html, "user") == {"source": "inbound", "tone": "bad"}
    assert dashboard_row(html, "gateway") == {"source": "outbound", "tone": "bad"}
    assert re.search(r'<g class="edge bad" data-from="gateway" data-to="user">', html), html[:3000]


def test_a_service_whose_calls_are_all_denied_shows_as_failing(mesh, tmp_path):
    cp, gateway, gateway_sidecar, users = example_mesh(mesh)
    applied = cp.cli("apply", "-f", "-", input_text=DENY_ALL)
    assert applied.returncode == 0, applied.stderr
    wait_until(lambda: curl(f"http://{gateway.address}/users/1").status == 403, 10,
               message="the user sidecars to deny the gateway")
    prometheus = mesh.prometheus([f"{u.admin[0]}:{u.admin[1]}" for u in users])
    denied_query = ('sum(swiftmesh_requests_total{listener="inbound",direction="inbound",cluster="local_app",'
                    'destination_service="user",grpc_status="7"})')
    wait_until(lambda: prometheus.value(denied_query) is not None, 30, message=prometheus.log_tail())
    before = prometheus.value(denied_query)

    statuses = call_users(gateway, 40)
    assert statuses == {403: 40}, statuses
    wait_until(lambda: prometheus.value(denied_query) == before + 40, 30,
               message=f"Prometheus to read 40 more denials; {prometheus.log_tail()}")
    assert prometheus.value('sum(swiftmesh_authorization_decisions_total{listener="inbound",caller="gateway",'
                            'decision="deny"})') >= 40

    with calls_continue(gateway.address, "/users/5"):
        assert_views_show_user_failing(cp, tmp_path)

    # The record of a denied call names the service it was for; the
    # gateway's error carries the grpc-message with the request id.
    denied_call = curl(f"http://{gateway.address}/users/3")
    assert denied_call.status == 403
    request_id = re.search(r"request id ([^:]+): swiftmesh explain", json.loads(denied_call.body)["error"]).group(1)
    explained = cp.cli("explain", request_id, "-o", "json")
    assert explained.returncode == 0, explained.stderr
    inbound = [r for p in json.loads(explained.stdout)["proxies"] for r in p["requests"]
               if r["direction"] == "inbound"]
    assert inbound and all(r["service"] == "user" and r["proxyError"]["reason"] == "forbidden" for r in inbound)


def assert_views_show_user_failing(cp, tmp_path) -> None:
    def denied():
        services, edges = traffic(cp)
        user, edge = services.get("user"), edges.get(("gateway", "user"))
        return services if user and edge and user["successRate"] == 0 and edge["successRate"] == 0 else None

    services = wait_until(denied, 15, message=f"the live view to show user failing: {traffic(cp)}")
    assert services["user"]["requestsPerSecond"] > 0 and services["user"]["source"] == "inbound"

    html = dashboard_dom(tmp_path / "profile", cp.api_url)
    assert dashboard_row(html, "user") == {"source": "inbound", "tone": "bad"}
    assert re.search(r'<g class="node bad" data-service="user">', html), html[:3000]
    assert re.search(r'<g class="edge bad" data-from="gateway" data-to="user">', html), html[:3000]


def test_plain_http_calls_a_policy_denies_count_as_failures(mesh):
    """An HTTP caller gets 403, not a 5xx nor a gRPC status: the denial
    still fails the call in the live view."""
    cp, gateway_sidecar = gateway_and_two_users(mesh)
    applied = cp.cli("apply", "-f", "-", input_text=DENY_ALL)
    assert applied.returncode == 0, applied.stderr
    address = f"127.0.0.1:{gateway_sidecar.upstream_port('user')}"
    wait_until(lambda: curl(f"http://{address}/ok").status == 403, 10, message="the user sidecars to deny the gateway")
    with calls_continue(address, "/ok"):
        def denied():
            services, edges = traffic(cp)
            user, edge = services.get("user"), edges.get(("gateway", "user"))
            return user if user and edge and user["successRate"] == 0 and edge["successRate"] == 0 else None

        user = wait_until(denied, 15, message=f"the live view to show user failing: {traffic(cp)}")
        assert user["requestsPerSecond"] > 0 and user["source"] == "inbound"
