"""Mesh configuration through the control plane: ServicePolicy resources
applied with `swiftmesh apply`, read back with `swiftmesh get`, deleted with
`swiftmesh delete`; external instances registered with `swiftmesh register`;
a snapshot a sidecar refuses, visible in `swiftmesh get sidecars`. Bad
resources and bad API requests get clear errors and change nothing."""
from __future__ import annotations

import json

from support import grpc_peer as g
from support.util import curl, wait_until

HEARTBEAT = "200ms"

CANARY = """\
apiVersion: swiftmesh.dev/v1alpha1
kind: ServicePolicy
metadata: { name: user }
spec:
  service: user
  loadBalancing: least_request
  routes:
    - match: { grpc: { service: e2e.Echo } }
      timeout: 2s
      retries: { attempts: 2, on: [unavailable, connect-failure] }
      split: [ { service: user, subset: { version: v1 }, weight: 90 }, { service: user, subset: { version: v2 }, weight: 10 } ]
  circuitBreaker: { maxRequests: 1024 }
  outlierDetection: { consecutiveErrors: 5 }
"""


def cluster_endpoints(sidecar, name: str) -> list[str]:
    return sidecar.endpoints(name)


def test_a_90_10_split_sends_about_a_tenth_of_the_calls_to_v2(mesh, tmp_path):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    versions = ["v1", "v1", "v2"]
    backends = [mesh.grpc_backend(f"user-{i}") for i in range(3)]
    sidecars = [mesh.sidecar(f"user-{i}-sidecar", control_plane, "user", b, labels={"version": v})
                for i, (b, v) in enumerate(zip(backends, versions))]
    gateway = mesh.sidecar("gateway-sidecar", control_plane, "gateway", mesh.unused_address(), upstreams=("user",))
    wait_until(lambda: len(gateway.endpoints("user")) == 3, timeout=5, message="three user instances")

    policy = tmp_path / "user.yaml"
    policy.write_text(CANARY)
    result = control_plane.cli("apply", "-f", str(policy))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "servicepolicy/user created\n"
    wait_until(lambda: gateway.endpoints("user[version=v2]") == [sidecars[2].inbound], timeout=1.0,
               message="the gateway's sidecar to have the v2 subset")
    assert gateway.endpoints("user[version=v1]") == sorted(s.inbound for s in sidecars[:2])

    channel = g.channel(f"127.0.0.1:{gateway.upstream_port('user')}")
    try:
        call = g.unary(channel)
        total = 2000
        for _ in range(total):
            call(b"x", timeout=5)
    finally:
        channel.close()
    v2_share = backends[2].calls / total
    assert 0.07 <= v2_share <= 0.13, v2_share
    assert backends[0].calls + backends[1].calls + backends[2].calls == total

    # Applying the same file again changes nothing; deleting the policy
    # sends every call to every instance again.
    assert control_plane.cli("apply", "-f", str(policy)).stdout == "servicepolicy/user unchanged\n"
    result = control_plane.cli("delete", "policy", "user")
    assert result.returncode == 0 and result.stdout == "servicepolicy/user deleted\n"
    wait_until(lambda: gateway.endpoints("user[version=v2]") == [], timeout=1.0, message="the subsets to go")


def test_get_shows_services_instances_sidecars_and_policies(mesh, tmp_path):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    backend = mesh.grpc_backend("user-1")
    user = mesh.sidecar("user-1-sidecar", control_plane, "user", backend, labels={"version": "v1"})
    gateway = mesh.sidecar("gateway-sidecar", control_plane, "gateway", mesh.unused_address(), upstreams=("user",))
    assert control_plane.cli("apply", "-f", "-", input_text=CANARY).returncode == 0

    services = control_plane.cli("get", "services")
    assert services.returncode == 0, services.stderr
    lines = [line.split() for line in services.stdout.splitlines()]
    assert lines[0] == ["NAME", "INSTANCES", "POLICY"]
    assert ["user", "1", "user"] in lines and ["gateway", "1", "-"] in lines

    instances = json.loads(control_plane.cli("get", "instances", "user", "-o", "json").stdout)
    assert instances == [{"service": "user", "address": user.inbound, "protocol": "http2", "labels": {"version": "v1"},
                          "health": "healthy", "registeredBy": instances[0]["registeredBy"]}]
    assert instances[0]["registeredBy"].startswith("user-")

    wait_until(lambda: gateway._ready(), timeout=5, message="the gateway's sidecar")
    sidecars = json.loads(control_plane.cli("get", "sidecars", "-o", "json").stdout)
    by_upstreams = {tuple(s["upstreams"]): s for s in sidecars}
    assert by_upstreams[("user",)]["ackedVersion"] == by_upstreams[("user",)]["sentVersion"]

    # -o yaml prints the resources ready to apply again.
    exported = control_plane.cli("get", "policies", "-o", "yaml").stdout
    assert exported.startswith("apiVersion: swiftmesh.dev/v1alpha1\nkind: ServicePolicy\n")
    again = control_plane.cli("apply", "-f", "-", input_text=exported)
    assert again.stdout == "servicepolicy/user unchanged\n", again.stderr


def test_bad_resources_and_bad_requests_get_clear_errors_and_change_nothing(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    bad = CANARY.replace("timeout: 2s", "timeout: 2").replace("least_request", "fastest")
    result = control_plane.cli("apply", "-f", "-", input_text=bad)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "the resources were refused; nothing was stored",
        'spec.loadBalancing: expected one of round_robin, least_request, random, ring_hash, got "fastest"',
        "spec.routes[0].timeout: expected a duration such as 250ms, 2s or 1m30s, got 2 (add a unit: h, m, s, ms, us or ns)",
    ]
    assert control_plane.api("GET", "/api/v1/resources")[1] == {"resources": []}

    # A second policy for the same service conflicts with the stored one.
    assert control_plane.cli("apply", "-f", "-", input_text=CANARY).returncode == 0
    other = CANARY.replace("metadata: { name: user }", "metadata: { name: user-2 }")
    status, body = control_plane.api("POST", "/api/v1/resources", other)
    assert status == 409
    assert body["issues"] == [{"path": "spec.service", "message":
                               "user already has ServicePolicy user; a service has one ServicePolicy, "
                               "so change that one or delete it first"}]

    status, body = control_plane.api("POST", "/api/v1/services/web/instances", '{"address": "web.local:80"}')
    assert (status, body["path"]) == (400, "address")
    status, body = control_plane.api("POST", "/api/v1/services/Web_1/instances", '{"address": "192.0.2.1:80"}')
    assert (status, body["path"]) == (400, "service")
    status, body = control_plane.api("DELETE", "/api/v1/resources/policies/nothing")
    assert (status, body["error"]) == (404, "no ServicePolicy named nothing")
    assert control_plane.api("GET", "/api/v1/instances")[1] == {"instances": []}
    assert control_plane.cli("get", "nonsense").stderr.startswith("get nonsense: unknown; use services, instances")


def test_an_external_instance_registered_with_the_cli_gets_traffic(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    web = mesh.http_backend("web-outside")
    result = control_plane.cli("register", "--service", "web", "--address", web.address, "--protocol", "http1")
    assert result.returncode == 0, result.stderr
    client = mesh.sidecar("client-sidecar", control_plane, "client", mesh.unused_address(), upstreams=("web",))
    wait_until(lambda: client.endpoints("web") == [web.address], timeout=5, message="the client to know web")
    r = curl(f"http://127.0.0.1:{client.upstream_port('web')}/x", "--http1.1")
    assert r.status == 200 and r.header("x-backend") == "web-outside"
    assert control_plane.cli("deregister", "--service", "web", "--address", web.address).returncode == 0
    wait_until(lambda: client.endpoints("web") == [], timeout=1.0, message="the instance to go")


def test_a_snapshot_a_sidecar_refuses_is_visible_and_the_previous_one_kept(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    web = mesh.http_backend("web-1")
    assert control_plane.cli("register", "--service", "web", "--address", web.address, "--protocol", "http1").returncode == 0
    gateway = mesh.sidecar("gateway-sidecar", control_plane, "gateway", mesh.unused_address(), upstreams=("web",))
    wait_until(lambda: gateway.endpoints("web") == [web.address], timeout=5, message="the web instance")
    # An HTTP/2 instance beside an HTTP/1.1 one: the gateway's sidecar
    # cannot balance one cluster over both, and says so.
    outside = mesh.unused_address()
    assert control_plane.cli("register", "--service", "web", "--address", outside, "--protocol", "http2").returncode == 0

    def refusal():
        sidecars = json.loads(control_plane.cli("get", "sidecars", "-o", "json").stdout)
        return next((s["refusal"] for s in sidecars if s["upstreams"] == ["web"] and "refusal" in s), None)

    found = wait_until(refusal, timeout=5, message="the gateway's refusal")
    assert ".protocol: http" in found["reason"] and "differs from the service's other instances" in found["reason"]
    table = control_plane.cli("get", "sidecars").stdout
    assert "differs from the service's other instances" in table
    assert gateway.endpoints("web") == [web.address], "the previous snapshot is kept"


def test_a_service_is_in_the_mesh_or_outside_it(mesh):
    """Callers reach sidecars in mutual TLS and external instances in
    plaintext: the control plane keeps the two in separate services."""
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    mesh.sidecar("user-1-sidecar", control_plane, "user", mesh.grpc_backend("user-1"))
    status, body = control_plane.api("POST", "/api/v1/services/user/instances",
                                     json.dumps({"address": mesh.unused_address(), "protocol": "http2"}))
    assert (status, body["path"]) == (409, "service") and "mutual TLS" in body["error"], body
    assert control_plane.cli("register", "--service", "web", "--address", mesh.unused_address()).returncode == 0
    web = mesh.sidecar("web-1-sidecar", control_plane, "web", mesh.http_backend("web-1"), wait_ready=False)
    wait_until(lambda: "has instances outside the mesh" in web.stderr_text(), timeout=10,
               message="the web sidecar to be told why it cannot register")
