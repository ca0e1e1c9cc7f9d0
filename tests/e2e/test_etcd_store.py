"""`swiftmesh control-plane --store etcd://...`: control-plane replicas share
their state in a real 3-member etcd cluster on loopback. Each serves its own
sidecars and sees the others' changes within a second; with one etcd member
and one replica killed, nothing is lost and traffic continues. HAProxy in TCP
mode plays the Kubernetes Service in front of the replicas."""
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support.etcd import EtcdCluster
from support.proxy import run_cli
from support.ports import free_port
from support.util import KeepAliveClient, port_open, wait_until

HEARTBEAT = "200ms"
# How long a dead replica's instances outlive it (default 20s): shorter here,
# so that the failure test outlasts it in a few seconds.
LEASE_TTL = 5


@pytest.fixture
def etcd(tmp_path):
    cluster = EtcdCluster(tmp_path / "etcd")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def replica(mesh, etcd, name):
    return mesh.control_plane(name=name, heartbeat=HEARTBEAT,
                              extra_args=("--store", etcd.store, "--etcd-lease-ttl", f"{LEASE_TTL}s"))


def root_file(control_plane, tmp_path: Path) -> Path:
    """The mesh's root, as `swiftmesh get ca` gives it: a replica keeps it in etcd, not in its data dir."""
    done = control_plane.cli("get", "ca")
    assert done.returncode == 0, done.stderr
    path = tmp_path / f"root-{control_plane.name}.pem"
    path.write_text(done.stdout)
    return path


def sidecar(mesh, control_plane, address, root, name, service, app, **kwargs):
    """A sidecar connected to `address` (a replica, or the Service in front
    of them), with a join token made through `control_plane`."""
    return mesh.sidecar(name, address, service, app, control_plane_ca=root,
                        token=control_plane.join_token(service), **kwargs)


def policy(load_balancing, name="user", service="user"):
    return f"""
apiVersion: swiftmesh.dev/v1alpha1
kind: ServicePolicy
metadata:
  name: {name}
spec:
  service: {service}
  loadBalancing: {load_balancing}
"""


def instances(control_plane, service):
    status, body = control_plane.api("GET", f"/api/v1/services/{service}/instances")
    assert status == 200, body
    return sorted(i["address"] for i in body["instances"])


def test_replicas_share_the_root_the_admin_token_and_join_tokens(mesh, etcd, tmp_path):
    a = replica(mesh, etcd, "replica-a")
    b = replica(mesh, etcd, "replica-b")
    assert a.admin_token and a.admin_token == b.admin_token
    assert root_file(a, tmp_path).read_text() == root_file(b, tmp_path).read_text()
    # A token made through A gets a sidecar connected to B its certificate.
    user = sidecar(mesh, a, b.address, root_file(b, tmp_path), "user-sidecar", "user", mesh.http_backend("user"))
    assert instances(b, "user") == [user.inbound]


def test_a_sidecar_on_one_replica_sees_an_instance_registered_through_the_other_within_a_second(mesh, etcd, tmp_path):
    a = replica(mesh, etcd, "replica-a")
    b = replica(mesh, etcd, "replica-b")
    root = root_file(a, tmp_path)
    gateway = sidecar(mesh, a, a.address, root, "gateway-sidecar", "gateway", mesh.unused_address(),
                      upstreams=("user",), app_protocol="http1")
    user = sidecar(mesh, a, b.address, root, "user-sidecar", "user", mesh.http_backend("user"), start=False)
    user.launch()
    # From the moment replica B has the instance, to when A's sidecar balances over it.
    wait_until(lambda: instances(b, "user") == [user.inbound], 20, interval=0.01, message="B to register the instance")
    registered = time.monotonic()
    wait_until(lambda: gateway.endpoints("user") == [user.inbound], 5, interval=0.01,
               message="the gateway's sidecar on A to see the instance")
    assert time.monotonic() - registered < 1.0

    # Resources applied through B reach A, and A's sidecars, as fast.
    done = b.cli("apply", "-f", "-", input_text=policy("random"))
    assert done.returncode == 0, done.stderr
    applied = time.monotonic()
    wait_until(lambda: a.api("GET", "/api/v1/resources/ServicePolicy")[1]["resources"] != [], 5, interval=0.01,
               message="A to have the policy")
    assert time.monotonic() - applied < 1.0

    # A stopped sidecar's instance leaves every replica.
    user.stop()
    wait_until(lambda: gateway.endpoints("user") == [] and instances(a, "user") == [], 5,
               message="the instance to leave A and its sidecars")


def test_two_replicas_applying_two_policies_for_one_service_at_once_store_one(mesh, etcd):
    a = replica(mesh, etcd, "replica-a")
    b = replica(mesh, etcd, "replica-b")
    for round in range(4):
        service = f"svc{round}"
        answers = {}

        def apply(control_plane, name):
            answers[name] = control_plane.cli("apply", "-f", "-", input_text=policy("random", name, service))

        threads = [threading.Thread(target=apply, args=(cp, f"{service}-{cp.name}")) for cp in (a, b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        applied = [name for name, done in answers.items() if done.returncode == 0]
        assert len(applied) == 1, {name: done.stderr for name, done in answers.items()}
        (refused,) = [done for done in answers.values() if done.returncode != 0]
        assert f"{service} already has ServicePolicy {applied[0]}" in refused.stderr
        for control_plane in (a, b):
            wait_until(lambda: [r["metadata"]["name"] for r in control_plane.api("GET", "/api/v1/resources/ServicePolicy")[1]
                                ["resources"] if r["spec"]["service"] == service] == applied, 5,
                       message=f"{control_plane.name} to apply {applied[0]} only")

    # A delete through either replica frees the service for another name.
    wait_until(lambda: b.cli("delete", "policy", "svc0-replica-a").returncode == 0
               or b.cli("delete", "policy", "svc0-replica-b").returncode == 0, 5, message="svc0's policy deleted through B")
    done = a.cli("apply", "-f", "-", input_text=policy("random", "svc0-next", "svc0"))
    assert done.returncode == 0, done.stderr


def haproxy_service(tmp_path, backends):
    """HAProxy in TCP mode in front of the replicas' sidecar APIs: connections
    go to the first replica up, as to a Kubernetes Service's pod."""
    port = free_port()
    servers = "\n".join(f"    server r{i} {address} check inter 100ms fall 1 rise 1"
                        for i, address in enumerate(backends))
    config = tmp_path / "haproxy.cfg"
    config.write_text(f"""
defaults
    mode tcp
    timeout connect 1s
    timeout client 1h
    timeout server 1h
    retries 3
    option redispatch
frontend control_plane
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance first
{servers}
""")
    proc = subprocess.Popen(["haproxy", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: port_open("127.0.0.1", port), 10, message="haproxy to listen")
    return proc, f"127.0.0.1:{port}"


def test_with_one_etcd_member_and_one_replica_killed_nothing_is_lost_and_traffic_continues(mesh, etcd, tmp_path):
    a = replica(mesh, etcd, "replica-a")
    b = replica(mesh, etcd, "replica-b")
    root = root_file(a, tmp_path)
    # Every sidecar connects to B first.
    haproxy, service = haproxy_service(tmp_path, [b.address, a.address])
    mesh.stack.callback(lambda: (haproxy.kill(), haproxy.wait(10)))
    users = [sidecar(mesh, a, service, root, f"user-{n}-sidecar", "user", mesh.http_backend(f"user-{n}"))
             for n in (1, 2)]
    gateway = sidecar(mesh, a, service, root, "gateway-sidecar", "gateway", mesh.unused_address(),
                      upstreams=("user",), app_protocol="http1")
    expected = sorted(u.inbound for u in users)
    wait_until(lambda: sorted(gateway.endpoints("user")) == expected, 10, message="the gateway to know both users")
    done = a.cli("apply", "-f", "-", input_text=policy("round_robin"))
    assert done.returncode == 0, done.stderr

    failures = 0
    sent = 0
    with KeepAliveClient("127.0.0.1", gateway.upstream_port("user")) as client:
        def traffic(seconds):
            nonlocal failures, sent
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                status, _, _ = client.get("/")
                sent += 1
                failures += status != 200

        traffic(0.5)
        etcd.members[0].kill()
        b.kill()
        # Past the lease of B's instances: had the sidecars not moved to A,
        # their instances would be gone by now.
        traffic(LEASE_TTL + 2)

    assert sent > 50
    assert failures == 0
    assert instances(a, "user") == expected
    assert sorted(gateway.endpoints("user")) == expected
    status, body = a.api("GET", "/api/v1/resources/ServicePolicy")
    assert status == 200 and [r["metadata"]["name"] for r in body["resources"]] == ["user"]
    # The two members left still take changes: a new instance reaches the gateway.
    third = sidecar(mesh, a, service, root, "user-3-sidecar", "user", mesh.http_backend("user-3"))
    wait_until(lambda: sorted(gateway.endpoints("user")) == sorted(expected + [third.inbound]), 5,
               message="the gateway to see a user instance registered after the failures")


def test_a_store_that_is_not_one_is_refused_with_the_syntax():
    done = run_cli("control-plane", "--store", "etcd://127.0.0.1")
    assert done.returncode == 64, done.stderr
    assert "--store: \"127.0.0.1\" is not an etcd member's HOST:PORT, such as 127.0.0.1:2379" in done.stderr
