"""The control plane and sidecars with real peers: grpcio instances of a
`user` service, each behind its sidecar, called through the sidecar of a
`gateway` that has no configuration of its own. Calls spread over every
instance; one that joins gets calls within a second; one killed with
SIGKILL, or a control plane killed and restarted, costs no call; a sidecar
that stops deregisters at once; a sidecar is ready only once configured."""
from __future__ import annotations

import re
import signal
import threading
import time

import grpc
import pytest

from support import grpc_peer as g
from support.callers import assert_no_grpc_call_fails
from support.proxy import http_get, run_cli
from support.util import curl, wait_until

# A TTL of three heartbeats: 600 ms.
HEARTBEAT = "200ms"


def user_instances(mesh, control_plane, count: int, first: int = 1, processes: bool = False):
    """`count` grpcio instances of `user` with their sidecars; with
    `processes`, each instance in a process of its own (to be SIGKILLed)."""
    backends, sidecars = [], []
    for i in range(first, first + count):
        backend = mesh.grpc_backend_process(f"user-{i}") if processes else mesh.grpc_backend(f"user-{i}")
        backends.append(backend)
        sidecars.append(mesh.sidecar(f"user-{i}-sidecar", control_plane, "user", backend))
    return backends, sidecars


def gateway_sidecar(mesh, control_plane, name: str = "gateway-sidecar", **kwargs):
    """The caller's sidecar: the test is its app, so its inbound side has no
    app behind it (nothing calls the gateway here)."""
    return mesh.sidecar(name, control_plane, "gateway", mesh.unused_address(), upstreams=("user",), **kwargs)


def wait_endpoints(sidecar, expected: list[str], timeout: float = 5.0) -> None:
    wait_until(lambda: sidecar.endpoints("user") == sorted(expected), timeout,
               message=f"{sidecar.name} to balance user over {sorted(expected)}")


def test_calls_spread_over_every_instance_and_reach_a_new_one_within_a_second(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    backends, sidecars = user_instances(mesh, control_plane, 3)
    gateway = gateway_sidecar(mesh, control_plane)
    wait_endpoints(gateway, [s.inbound for s in sidecars])

    # Each found out that its grpcio app speaks HTTP/2.
    assert all("the app speaks http2" in s.stderr_text() for s in sidecars)
    channel = g.channel(f"127.0.0.1:{gateway.upstream_port('user')}")
    try:
        call = g.unary(channel)
        total = 3000
        for _ in range(total):
            call(b"x", timeout=5)
        shares = [b.calls / total for b in backends]
        assert all(abs(share - 1 / 3) <= 0.05 for share in shares), shares

        # A fourth instance joins while calls flow: it gets calls within a
        # second of its sidecar being ready (registered and configured).
        stop, errors = threading.Event(), []

        def load() -> None:
            while not stop.is_set():
                try:
                    call(b"x", timeout=5)
                except grpc.RpcError as error:
                    errors.append(error)

        caller = threading.Thread(target=load)
        caller.start()
        try:
            fourth = mesh.grpc_backend("user-4")
            mesh.sidecar("user-4-sidecar", control_plane, "user", fourth)
            wait_until(lambda: fourth.calls > 0, timeout=1.0, message="the new instance to get calls")
        finally:
            stop.set()
            caller.join(10)
        assert errors == []
    finally:
        channel.close()


def test_an_instance_killed_with_sigkill_costs_no_call_and_leaves_the_registry(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    backends, sidecars = user_instances(mesh, control_plane, 3, processes=True)
    gateway = gateway_sidecar(mesh, control_plane)
    wait_endpoints(gateway, [s.inbound for s in sidecars])

    def kill_first_instance() -> None:
        sidecars[0].kill()
        backends[0].kill()

    assert_no_grpc_call_fails(f"127.0.0.1:{gateway.upstream_port('user')}", 3000, kill_first_instance)
    # Its heartbeats stopped: gone from the registry after the TTL.
    wait_endpoints(gateway, [s.inbound for s in sidecars[1:]], timeout=3)


def test_an_instance_whose_app_stops_is_left_out_until_it_is_back(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    backends, sidecars = user_instances(mesh, control_plane, 2)
    gateway = gateway_sidecar(mesh, control_plane)
    wait_endpoints(gateway, [s.inbound for s in sidecars])

    port = backends[0].port
    backends[0].stop()
    # Its sidecar lives and beats, but reports the app unhealthy.
    wait_endpoints(gateway, [sidecars[1].inbound], timeout=2)
    assert sidecars[0].alive
    _, body = control_plane.api("GET", "/api/v1/services/user/instances")
    assert {i["address"]: i["health"] for i in body["instances"]} == {
        sidecars[0].inbound: "unhealthy", sidecars[1].inbound: "healthy"}
    assert "the app does not accept connections" in sidecars[0].stderr_text()

    mesh.grpc_backend("user-1-again", port=port)
    wait_endpoints(gateway, [s.inbound for s in sidecars], timeout=2)


def test_a_control_plane_killed_and_restarted_under_load_costs_no_call_and_keeps_its_state(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    _, sidecars = user_instances(mesh, control_plane, 3)
    gateway = gateway_sidecar(mesh, control_plane)
    everyone = [s.inbound for s in sidecars]
    wait_endpoints(gateway, everyone)

    def kill_then_restart() -> None:
        control_plane.kill()
        # Static stability: without a control plane, sidecars keep serving
        # with what they have, past any TTL.
        time.sleep(1.0)  # the outage itself, not a wait for a condition
        assert gateway.endpoints("user") == sorted(everyone)
        control_plane.start()

    assert_no_grpc_call_fails(f"127.0.0.1:{gateway.upstream_port('user')}", 3000, kill_then_restart)

    # Every sidecar subscribes again (with a jittered backoff) and takes its snapshot.
    wait_until(lambda: [s.get("ackedVersion") is not None for s in control_plane.api("GET", "/api/v1/sidecars")[1]["sidecars"]]
               == [True] * 4, timeout=10, message="the four sidecars to subscribe again")
    # The restarted control plane knows every instance from its store: a
    # sidecar that subscribes now gets all three.
    late = gateway_sidecar(mesh, control_plane, name="late-sidecar")
    wait_endpoints(late, everyone)
    # And the gateway's sidecar subscribed again: it gets the next change.
    sidecars[0].stop()
    wait_endpoints(gateway, everyone[1:], timeout=2)


def test_a_control_plane_stopped_with_sigterm_deregisters_no_one(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    _, sidecars = user_instances(mesh, control_plane, 2)
    gateway = gateway_sidecar(mesh, control_plane)
    everyone = [s.inbound for s in sidecars]
    wait_endpoints(gateway, everyone)
    assert control_plane.stop() == 0
    log = control_plane.stderr_text()
    assert "sidecar deregistered" not in log
    # A clean stop is no error; the addresses read as every flag takes them.
    assert not re.search(r"^\S+ (error|critical) ", log, re.MULTILINE), log
    assert re.search(rf"address=127\.0\.0\.1:{control_plane.port} .*sidecar API listening", log), log
    assert re.search(rf"address=127\.0\.0\.1:{control_plane.http_port} .*HTTP API listening", log), log
    control_plane.start()
    wait_until(lambda: [s.get("ackedVersion") is not None for s in control_plane.api("GET", "/api/v1/sidecars")[1]["sidecars"]]
               == [True] * 3, timeout=10, message="the three sidecars to subscribe again")
    assert gateway.endpoints("user") == sorted(everyone)
    _, body = control_plane.api("GET", "/api/v1/services/user/instances")
    assert sorted(i["address"] for i in body["instances"]) == sorted(everyone)


def test_a_stopped_sidecar_deregisters_at_once_and_drains(mesh):
    # Heartbeats every 5 s: a TTL of 15 s, so only the deregistration can
    # remove the instance within the test's second.
    control_plane = mesh.control_plane(heartbeat="5s")
    _, sidecars = user_instances(mesh, control_plane, 2)
    gateway = gateway_sidecar(mesh, control_plane)
    wait_endpoints(gateway, [s.inbound for s in sidecars])
    # SIGHUP has nothing to reload in a sidecar: it keeps running.
    sidecars[0].signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP ignored" in sidecars[0].stderr_text(), timeout=5, message="the SIGHUP to be logged")
    assert sidecars[0].alive and gateway.endpoints("user") == sorted(s.inbound for s in sidecars)
    started = time.monotonic()
    sidecars[0].signal(signal.SIGTERM)
    wait_endpoints(gateway, [sidecars[1].inbound], timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert sidecars[0].wait_exit(10) == 0
    assert "sidecar deregistered" in control_plane.stderr_text()


def test_a_sidecar_is_ready_only_once_the_control_plane_configured_it(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    token = control_plane.join_token("gateway")
    control_plane.stop()
    gateway = gateway_sidecar(mesh, control_plane, wait_ready=False, token=token)
    status, _, body = gateway.admin_get("/ready")
    assert status == 503
    assert b"certificate from the control plane" in body, body
    control_plane.start()
    # The sidecar tries again with a backoff capped at 5 s.
    wait_until(gateway._ready, timeout=12, message="the sidecar to become ready")
    assert gateway.endpoints("user") == []


def test_http1_apps_talk_through_sidecars_over_http2(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    web = mesh.http_backend("web-1")
    web_sidecar = mesh.sidecar("web-1-sidecar", control_plane, "web", web)  # found out: http1
    client = mesh.sidecar("client-sidecar", control_plane, "client", mesh.unused_address(), upstreams=("web",),
                          app_protocol="http1")
    wait_until(lambda: client.endpoints("web") == [web_sidecar.inbound], timeout=5, message="the client to know web")
    r = curl(f"http://127.0.0.1:{client.upstream_port('web')}/hello", "--http1.1", "-X", "POST", "--data-binary", "ping")
    assert r.status == 200 and r.header("x-backend") == "web-1"
    received = r.json()
    assert (received["method"], received["path"], received["bodyLength"]) == ("POST", "/hello", 4)
    assert received["httpVersion"] == "HTTP/1.1"
    # The hop between the sidecars is HTTP/2.
    clusters = client.admin_json("/clusters")["clusters"]
    assert next(c for c in clusters if c["name"] == "web")["protocol"] == "http2"
    # The web sidecar found out that its app speaks HTTP/1.1.
    assert "the app speaks http1" in web_sidecar.stderr_text()
    assert next(c for c in web_sidecar.admin_json("/clusters")["clusters"] if c["name"] == "local_app")["protocol"] == "http1"


@pytest.mark.parametrize("args,message", [
    (["--service", "User_1"], '--service: "User_1" is not a service name'),
    (["--inbound", "0.0.0.0:15001"], "add --advertise with this instance's IP and port"),
    (["--upstream", "alive"], "--upstream alive: expected NAME=HOST:PORT"),
    (["--upstream", "alive=localhost:9002"], "is a host name; listen on an IP address"),
    (["--control-plane-ca", "/nonexistent/root.pem"], "--control-plane-ca /nonexistent/root.pem: cannot be read"),
    (["--control-plane-ca", "/etc/hostname"], "holds no PEM certificate"),
    (["--tracing-otlp-endpoint", "127.0.0.1:4318"], "is not an http:// or https:// URL"),
    (["--tracing-otlp-endpoint", "http://127.0.0.1:4318", "--tracing-sampling-rate", "1.5"],
     "--tracing-sampling-rate must be from 0 to 1"),
    (["--tracing-sampling-rate", "0.5"], "need --tracing-otlp-endpoint"),
])
def test_sidecar_options_are_checked_before_anything_starts(args, message, tmp_path):
    root = tmp_path / "root.pem"
    root.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    base = {"--control-plane": "127.0.0.1:15010", "--control-plane-ca": str(root), "--service": "user",
            "--app": "127.0.0.1:8081", "--inbound": "127.0.0.1:15001"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    result = run_cli("sidecar", *[part for pair in base.items() for part in pair])
    assert result.returncode == 64, result
    assert message in result.stderr


def test_the_control_plane_refuses_a_host_name_to_listen_on():
    result = run_cli("control-plane", "--listen", "localhost:15010")
    assert result.returncode == 64
    assert "--listen: \"localhost\" is a host name" in result.stderr


def test_the_gateway_sidecar_exposes_what_it_was_told(mesh):
    control_plane = mesh.control_plane(heartbeat=HEARTBEAT)
    _, sidecars = user_instances(mesh, control_plane, 1)
    gateway = gateway_sidecar(mesh, control_plane)
    wait_endpoints(gateway, [sidecars[0].inbound])
    config = gateway.admin_json("/config")
    assert [listener["name"] for listener in config["listeners"]] == ["inbound", "outbound_user"]
    assert [cluster["name"] for cluster in config["clusters"]] == ["local_app", "user"]
    assert config["clusters"][1]["endpoints"] == [{"address": sidecars[0].inbound, "weight": 1}]
    status, _, body = http_get("127.0.0.1", gateway.admin_port, "/ready")
    assert status == 200, body
