"""Many callers at once, with something done to the system halfway: the
load of the tests that must lose no request while an instance fails."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import grpc

from . import grpc_peer as g

CALLERS = 16


def run_callers(call: Callable[[], bool], total: int, halfway: Callable[[], None]) -> list[bool]:
    """`total` calls spread over CALLERS threads; `halfway` runs once, when
    half of them have finished. The outcome of every call, in finish order."""
    results: list[bool] = []
    lock = threading.Lock()
    next_index = iter(range(total))
    fired = threading.Event()

    def caller(_: int) -> None:
        while True:
            with lock:
                if next(next_index, None) is None:
                    return
            ok = call()
            with lock:
                results.append(ok)
                due = len(results) == total // 2
            if due:
                halfway()
                fired.set()

    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        list(pool.map(caller, range(CALLERS)))
    assert fired.is_set()
    return results


def grpc_caller(target: str) -> tuple[Callable[[], bool], Callable[[], None], list]:
    """A call function for `run_callers` to `target` over one channel per caller thread,
    its cleanup, and the errors of the calls that failed."""
    local = threading.local()
    channels: list[grpc.Channel] = []
    errors: list = []
    lock = threading.Lock()

    def call() -> bool:
        if not hasattr(local, "stub"):
            ch = g.channel(target)
            with lock:
                channels.append(ch)
            local.stub = g.unary(ch)
        try:
            local.stub(b"x", timeout=10)
            return True
        except grpc.RpcError as error:
            errors.append((error.code(), error.details()))
            return False

    def close() -> None:
        for ch in channels:
            ch.close()

    return call, close, errors


def assert_no_grpc_call_fails(target: str, total: int, halfway: Callable[[], None]) -> None:
    """`total` unary calls to `target` from CALLERS callers, `halfway` done
    halfway through: every call must succeed."""
    call, close, errors = grpc_caller(target)
    try:
        results = run_callers(call, total, halfway)
    finally:
        close()
    assert results.count(False) == 0, errors
