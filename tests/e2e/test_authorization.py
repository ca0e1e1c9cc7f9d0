"""Authorization, the mesh's ACL: AuthorizationPolicy resources applied to
the control plane and enforced by the service's sidecars on their inbound
listener, on the caller's mutual-TLS identity. The issue's case with a
grpcio client: the gateway may call user.UserService/GetUser, alive may not
(PERMISSION_DENIED). Decisions are counted in /metrics, denials logged, and
changes apply live. A standalone proxy's listener takes the same rules."""
from __future__ import annotations

import grpc

from support import grpc_peer as g
from support.config import cluster, route, single_listener
from support.util import curl, wait_until

HEARTBEAT = "200ms"

POLICY = """apiVersion: swiftmesh.dev/v1alpha1
kind: AuthorizationPolicy
metadata: { name: user-callers }
spec:
  service: user
  default: deny
  rules:
    - from: [gateway]
      grpc: { service: user.UserService, methods: [GetUser, ListUsers] }
    - from: ["*"]
      paths: [/healthz]
"""


def caller(mesh, cp, service: str):
    """A caller's sidecar; the test is its app, calling user."""
    return mesh.sidecar(f"{service}-sidecar", cp, service, mesh.unused_address(), upstreams=("user",),
                        app_protocol="http2")


def get_user(sidecar, method: str = "GetUser") -> tuple[grpc.StatusCode, str, dict]:
    """One call through `sidecar` to user: (status, details, trailing metadata)."""
    with g.channel(f"127.0.0.1:{sidecar.upstream_port('user')}") as ch:
        call = ch.unary_unary(f"/{g.USER_SERVICE}/{method}")
        try:
            _, rpc = call.with_call(b"id=7", timeout=10)
            return rpc.code(), rpc.details() or "", dict(rpc.trailing_metadata() or ())
        except grpc.RpcError as error:
            return error.code(), error.details() or "", dict(error.trailing_metadata() or ())


def metric(sidecar, caller: str, decision: str) -> float:
    text = sidecar.admin_get("/metrics")[2].decode()
    wanted = f'swiftmesh_authorization_decisions_total{{caller="{caller}",decision="{decision}",listener="inbound"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))


def test_the_gateway_may_get_users_and_alive_may_not(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    applied = cp.cli("apply", "-f", "-", input_text=POLICY)
    assert applied.returncode == 0 and "authorizationpolicy/user-callers created" in applied.stdout, applied.stderr
    backend = mesh.grpc_backend("user-1")
    user = mesh.sidecar("user-1-sidecar", cp, "user", backend, app_protocol="http2")
    gateway, alive = caller(mesh, cp, "gateway"), caller(mesh, cp, "alive")
    for sidecar in (gateway, alive):
        wait_until(lambda: sidecar.endpoints("user") == [user.inbound], timeout=5, message=f"{sidecar.name} to know user")

    code, _, _ = get_user(gateway)
    assert code == grpc.StatusCode.OK
    code, details, trailers = get_user(alive)
    assert code == grpc.StatusCode.PERMISSION_DENIED, details
    assert trailers.get("swiftmesh-proxy-error") == "forbidden"
    code, _, trailers = get_user(gateway, "DeleteUser")
    assert (code, trailers.get("swiftmesh-proxy-error")) == (grpc.StatusCode.PERMISSION_DENIED, "forbidden")
    assert backend.calls == 1, "denied calls never reach the app"

    assert (metric(user, "gateway", "allow"), metric(user, "gateway", "deny"), metric(user, "alive", "deny")) == (1, 1, 1)
    log = user.stderr_text()
    assert "request denied by authorization" in log and "caller=spiffe://swiftmesh.local/service/alive" in log
    listed = cp.cli("get", "authorizationpolicies")
    assert listed.returncode == 0 and "user-callers" in listed.stdout and "deny" in listed.stdout, listed.stdout


def test_policy_changes_apply_live(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    user = mesh.sidecar("user-1-sidecar", cp, "user", mesh.grpc_backend("user-1"), app_protocol="http2")
    alive = caller(mesh, cp, "alive")
    wait_until(lambda: alive.endpoints("user") == [user.inbound], timeout=5, message="alive to know user")
    assert get_user(alive)[0] == grpc.StatusCode.OK, "no policy: every caller of the mesh may call"

    assert cp.cli("apply", "-f", "-", input_text=POLICY).returncode == 0
    wait_until(lambda: get_user(alive)[0] == grpc.StatusCode.PERMISSION_DENIED, timeout=5, message="the policy to apply")
    opened = POLICY.replace("from: [gateway]", "from: [gateway, alive]")
    assert cp.cli("apply", "-f", "-", input_text=opened).returncode == 0
    wait_until(lambda: get_user(alive)[0] == grpc.StatusCode.OK, timeout=5, message="the changed policy to apply")
    assert cp.cli("apply", "-f", "-", input_text=POLICY).returncode == 0
    wait_until(lambda: get_user(alive)[0] == grpc.StatusCode.PERMISSION_DENIED, timeout=5, message="the policy again")
    assert cp.cli("delete", "authorizationpolicy", "user-callers").returncode == 0
    wait_until(lambda: get_user(alive)[0] == grpc.StatusCode.OK, timeout=5, message="the deletion to apply")


def test_http_callers_get_403(mesh):
    cp = mesh.control_plane(heartbeat=HEARTBEAT)
    http_policy = POLICY.replace("grpc: { service: user.UserService, methods: [GetUser, ListUsers] }",
                                 "paths: [/users/*]\n      methods: [GET]")
    assert cp.cli("apply", "-f", "-", input_text=http_policy).returncode == 0
    user = mesh.sidecar("user-1-sidecar", cp, "user", mesh.http_backend("user-1"))
    gateway = mesh.sidecar("gateway-sidecar", cp, "gateway", mesh.unused_address(), upstreams=("user",),
                           app_protocol="http1")
    wait_until(lambda: gateway.endpoints("user") == [user.inbound], timeout=5, message="the gateway to know user")
    base = f"http://127.0.0.1:{gateway.upstream_port('user')}"
    assert curl(f"{base}/users/7").status == 200
    denied = curl(f"{base}/users/7", "-X", "DELETE")
    assert denied.status == 403 and denied.header("swiftmesh-proxy-error") == "forbidden"
    assert curl(f"{base}/healthz").status == 200, "any caller of the mesh may check health"
    assert curl(f"{base}/admin").status == 403
    # A path is read as the app reads it before any rule: /users/../admin is /admin, not under /users/*.
    sneaky = curl(f"{base}/users/../admin", "--path-as-is")
    assert sneaky.status == 403 and sneaky.header("swiftmesh-proxy-error") == "forbidden", sneaky.body
    assert curl(f"{base}/users/%2e%2e/admin", "--path-as-is").status == 400, "an encoded dot segment is refused"


def test_a_standalone_listener_applies_authorization(mesh):
    backend = mesh.http_backend("a")
    listener = single_listener([route("a")], [cluster("a", [backend])])
    listener["listeners"][0]["authorization"] = {
        "default": "allow", "rules": [{"action": "deny", "paths": ["/internal/*"]}]}
    proxy = mesh.proxy(listener)
    assert curl(proxy.url("/public")).status == 200
    denied = curl(proxy.url("/internal/keys"))
    assert denied.status == 403 and denied.header("swiftmesh-proxy-error") == "forbidden"
    assert backend.count_path("/internal") == 0
    config = proxy.admin_json("/config")
    assert config["listeners"][0]["authorization"]["rules"] == [{"action": "deny", "paths": ["/internal/*"]}]
