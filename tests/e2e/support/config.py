"""Small builders for proxy configs (plain dicts, written as YAML)."""
from __future__ import annotations

from typing import Any, Iterable, Optional, Union

Endpoint = Union[str, dict, Any]


def _endpoint(ep: Endpoint) -> Union[str, dict]:
    if isinstance(ep, (str, dict)):
        return ep
    return ep.address  # a backend object


def cluster(name: str, endpoints: Iterable[Endpoint] = (), **fields: Any) -> dict:
    """A static cluster; `fields` are other cluster keys (protocol,
    loadBalancing, hashHeader, connectTimeout, dns)."""
    c: dict = {"name": name}
    c.update(fields)
    if "dns" not in fields:
        c["endpoints"] = [_endpoint(e) for e in endpoints]
    return c


def weighted(backend: Any, weight: int) -> dict:
    return {"address": _endpoint(backend), "weight": weight}


def route(cluster: Optional[str] = None, split: Optional[list] = None, match: Optional[dict] = None,
          **fields: Any) -> dict:
    r: dict = {"match": match if match is not None else {"pathPrefix": "/"}}
    if cluster is not None:
        r["cluster"] = cluster
    if split is not None:
        r["split"] = split
    r.update(fields)
    return r


def single_listener(routes: list, clusters: list, name: str = "ingress", limits: Optional[dict] = None,
                    **top: Any) -> dict:
    listener: dict = {"name": name, "routes": routes}
    if limits:
        listener["limits"] = limits
    cfg: dict = {"listeners": [listener], "clusters": clusters}
    cfg.update(top)
    return cfg


def catch_all(cluster_name: str, backends: Iterable[Endpoint], **cluster_fields: Any) -> dict:
    """One listener, one catch-all route, one cluster."""
    return single_listener([route(cluster_name)], [cluster(cluster_name, backends, **cluster_fields)])
