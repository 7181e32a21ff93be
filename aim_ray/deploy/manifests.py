"""The manifests beside a RayService, and how all of them are written out.

Owns the ``NetworkPolicy`` (the Serve port open, Ray's ports only among the cluster's pods,
egress to the configured providers), the Prometheus ``PodMonitor``, and the YAML dump of a
manifest list (block strings, no anchors).
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import yaml

from aim_ray.config.mcp import MCPConfig
from aim_ray.deploy.options import (
    DASHBOARD_PORT,
    METRICS_PORT,
    SERVE_PORT,
    RayServiceOptions,
    metadata,
)


class _ManifestDumper(yaml.SafeDumper):
    """Block style for multi-line strings, so ``serveConfigV2`` reads as the YAML it is,
    and no anchors: every manifest reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _str_representer)


def dump_manifests(documents: list[dict[str, Any]], header: str) -> str:
    dumped = [yaml.dump(d, Dumper=_ManifestDumper, sort_keys=False) for d in documents]
    return header + "---\n".join(dumped)


def provider_endpoints(mcp: MCPConfig | None) -> list[tuple[str, int]]:
    """(host, port) of every configured service the cluster must reach, in order."""
    if mcp is None:
        return []
    found: list[tuple[str, int]] = []
    entries = [p.model_dump(mode="json") for p in mcp.providers if p.enabled]
    entries += [t.model_dump(mode="json") for t in mcp.tools if t.enabled]
    for entry in entries:
        config = entry.get("config") or {}
        if config.get("host") and config.get("port"):
            found.append((config["host"], int(config["port"])))
        for key in ("base_url", "url", "endpoint"):
            if isinstance(config.get(key), str):
                url = urlsplit(config[key])
                if url.hostname:
                    found.append((url.hostname, url.port or _default_port(url.scheme)))
    return list(dict.fromkeys(found))


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _serve_port_ingress(options: RayServiceOptions, in_namespace: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": SERVE_PORT}]}
    if options.ingress_namespaces:
        rule["from"] = [in_namespace(name) for name in options.ingress_namespaces]
    return rule


def network_policy(options: RayServiceOptions, mcp: MCPConfig | None) -> dict[str, Any]:
    """Ingress: the Serve port from anywhere (or from ``ingress_namespaces``), Ray's ports
    only among the cluster's own pods, the dashboard for the KubeRay operator, metrics for
    Prometheus. Egress: the cluster's pods, DNS, the configured providers and 443."""
    own = {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": options.name}}}
    in_namespace = lambda name: {  # noqa: E731 - a tiny selector factory
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}
    }
    egress = [
        {"to": [own]},
        {
            "to": [in_namespace("kube-system")],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        # Model hubs, web_fetch/web_search targets and the Kubernetes API (autoscaler).
        {"ports": [{"protocol": "TCP", "port": 443}]},
    ]
    for host, port in provider_endpoints(mcp):
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": port}]}
        if _is_ip(host):
            rule["to"] = [{"ipBlock": {"cidr": f"{host}/32"}}]
        egress.append(rule)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(options) | {"name": f"{options.name}-network"},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/instance": options.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                _serve_port_ingress(options, in_namespace),
                {"from": [own]},
                {
                    "from": [in_namespace("kuberay-system")],
                    "ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}],
                },
                {
                    "from": [in_namespace("monitoring")],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                },
            ],
            "egress": egress,
        },
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def pod_monitor(options: RayServiceOptions) -> dict[str, Any]:
    """Prometheus Operator scrape of every Ray pod's metrics port (ours, Serve's, vLLM's)."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata(options) | {"name": f"{options.name}-metrics"},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/instance": options.name}},
            "podMetricsEndpoints": [{"port": "metrics", "path": "/metrics", "interval": "30s"}],
        },
    }
