"""A real OTLP/HTTP trace receiver: it decodes each POST /v1/traces body with
the opentelemetry-proto package (the protobuf definitions every OpenTelemetry
collector uses) and keeps the spans, flattened for assertions."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

KIND_SERVER = Span.SPAN_KIND_SERVER
KIND_CLIENT = Span.SPAN_KIND_CLIENT


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


@dataclass
class ReceivedSpan:
    service: str
    scope: str
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start: int
    end: int
    attributes: dict = field(default_factory=dict)
    status_code: int = 0
    status_message: str = ""


class OTLPReceiver:
    def __init__(self, host: str = "127.0.0.1", fail_with: Optional[int] = None):
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.content_types: list[str] = []
        self.fail_with = fail_with
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver._take(self.path, self.headers.get("content-type", ""), body)
                status = receiver.fail_with or (200 if self.path == "/v1/traces" else 404)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "OTLPReceiver":
        self.thread.start()
        return self

    def _take(self, path: str, content_type: str, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)  # raises on a malformed body: the test sees no spans and fails
        spans = []
        for resource_spans in request.resource_spans:
            attributes = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    spans.append(ReceivedSpan(
                        service=attributes.get("service.name", ""), scope=scope_spans.scope.name,
                        trace_id=s.trace_id.hex(), span_id=s.span_id.hex(), parent_span_id=s.parent_span_id.hex(),
                        name=s.name, kind=s.kind, start=s.start_time_unix_nano, end=s.end_time_unix_nano,
                        attributes={kv.key: _value(kv.value) for kv in s.attributes},
                        status_code=s.status.code, status_message=s.status.message))
        with self._lock:
            self.requests += 1
            self.content_types.append(content_type)
            if path == "/v1/traces":
                self.spans.extend(spans)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
