"""The demo's example services (`swiftmesh example user|alive|gateway`)
on their own, against real gRPC and HTTP clients: the User service's unary
and server-streaming calls, grpc.health.v1, and the gateway's JSON with its
errors mapped from gRPC statuses."""
from __future__ import annotations

import json
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from support import examples
from support.util import curl, wait_until


def get_user_request(user_id: int) -> bytes:
    """example.user.v1.GetUserRequest { id = 1 } on the wire: key 0x08, then the varint."""
    out = bytearray(b"\x08")
    while True:
        byte, user_id = user_id & 0x7F, user_id >> 7
        out.append(byte | (0x80 if user_id else 0))
        if not user_id:
            return bytes(out)


def test_user_and_health_over_grpc(tmp_path):
    user = examples.instance(tmp_path, "user", "user-1")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{user.port}") as channel:
            get_user = channel.unary_unary("/example.user.v1.UserService/GetUser")
            reply = get_user(get_user_request(7), timeout=5)
            assert b"User 7" in reply and b"user7@example.com" in reply and b"user-1" in reply
            try:
                get_user(get_user_request(5000), timeout=5)
                raise AssertionError("id 5000 should not exist")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND and "1 to 1000" in error.details()
            listed = list(channel.unary_stream("/example.user.v1.UserService/ListUsers")(b"\x08\x03", timeout=5))
            assert len(listed) == 3 and all(b"user-1" in message for message in listed)

            health = health_pb2_grpc.HealthStub(channel)
            serving = health_pb2.HealthCheckResponse.SERVING
            assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == serving
            assert health.Check(health_pb2.HealthCheckRequest(service="example.user.v1.UserService"),
                                timeout=5).status == serving
            try:
                health.Check(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=5)
                raise AssertionError("an unknown service should be NOT_FOUND")
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert next(watch).status == serving
            watch.cancel()
    finally:
        user.stop()


def test_gateway_turns_http_into_grpc_and_statuses_into_http(tmp_path):
    user = examples.instance(tmp_path, "user", "user-1")
    alive = examples.instance(tmp_path, "alive", "alive-1")
    gateway = examples.gateway(tmp_path, user.address, alive.address)
    base = f"http://127.0.0.1:{gateway.port}"
    try:
        got = curl(f"{base}/users/7")
        assert got.status == 200 and got.header("content-type") == "application/json"
        assert json.loads(got.body) == {"id": 7, "name": "User 7", "email": "user7@example.com",
                                        "servedBy": "user-1", "caller": ""}
        listed = json.loads(curl(f"{base}/users?limit=4").body)["users"]
        assert [u["id"] for u in listed] == [1, 2, 3, 4]
        assert json.loads(curl(f"{base}/alive").body) == {"alive": True, "servedBy": "alive-1", "caller": ""}

        bad = curl(f"{base}/users/seven")
        assert bad.status == 400 and "must be a number" in json.loads(bad.body)["error"]
        missing = curl(f"{base}/users/5000")
        assert missing.status == 404 and json.loads(missing.body)["grpcStatus"] == "notFound"

        alive.stop()
        down = curl(f"{base}/alive")
        assert down.status == 503 and json.loads(down.body)["grpcStatus"] == "unavailable"
    finally:
        for process in (gateway, alive, user):
            process.stop()


def test_sigterm_under_load_stops_gracefully(tmp_path):
    """Calls keep arriving while the instance stops: it refuses new ones
    (GOAWAY), lets the running ones finish and exits 0. A cancelled gRPC
    server used to crash here on a stream opened during its teardown."""
    user = examples.instance(tmp_path, "user", "user-1")
    stop = threading.Event()
    answered = []

    def load() -> None:
        with grpc.insecure_channel(user.address) as channel:
            get_user = channel.unary_unary("/example.user.v1.UserService/GetUser")
            while not stop.is_set():
                try:
                    answered.append(get_user(get_user_request(7), timeout=2))
                except grpc.RpcError:
                    pass

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(answered) >= 50, 10, message="calls to be answered")
        assert user.stop() == 0
        assert "crashed" not in user.stderr_text()
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
