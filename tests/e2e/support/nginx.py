"""nginx as an h2c (HTTP/2 prior knowledge, cleartext) backend: it answers
every request with `nginx <name>` and reports what it saw in response headers
(x-upstream-proto is nginx's $server_protocol, e.g. HTTP/2.0)."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

from .ports import free_port
from .util import port_open, stop_child, wait_until

_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests {keepalive_requests};
  server {{
    listen 127.0.0.1:{port} http2;
{locations}
    location / {{
      add_header x-backend {name} always;
      add_header x-upstream-proto $server_protocol always;
      add_header x-seen-method $request_method always;
      add_header x-seen-uri $request_uri always;
      add_header x-seen-xff $http_x_forwarded_for always;
      add_header x-seen-xfp $http_x_forwarded_proto always;
      add_header x-seen-request-id $http_x_request_id always;
      add_header x-seen-content-length $http_content_length always;
      add_header x-seen-grpc-timeout $http_grpc_timeout always;
      return 200 "nginx {name}\\n";
    }}
  }}
}}
"""


class NginxH2C:
    def __init__(self, workdir: Path, name: str = "nginx", keepalive_requests: int = 100000, locations: str = ""):
        """keepalive_requests: nginx sends GOAWAY after this many requests on
        a connection; locations: more `location` blocks, before `location /`."""
        self.keepalive_requests = keepalive_requests
        self.locations = locations
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NginxH2C":
        last = ""
        for _attempt in range(5):
            self.port = free_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(_CONF.format(dir=self.dir, port=self.port, name=self.name,
                                         keepalive_requests=self.keepalive_requests, locations=self.locations))
            err = open(self.dir / "nginx.stderr", "ab")
            self.proc = subprocess.Popen(
                ["nginx", "-p", str(self.dir), "-c", str(conf), "-e", str(self.dir / "error.log")],
                stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
            err.close()
            try:
                wait_until(lambda: self.proc.poll() is None and port_open("127.0.0.1", self.port),
                           timeout, message="nginx to listen")
                return self
            except AssertionError:
                last = (self.dir / "error.log").read_text(errors="replace") if (self.dir / "error.log").exists() else ""
                self.stop()
        raise RuntimeError(f"nginx did not start: {last}")

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_child(self.proc)
        self.proc = None
