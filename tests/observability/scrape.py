"""The Prometheus configuration the live tests run, derived from the shipped example.

The gateway job is prometheus/prometheus.yml's own `waiide-hub` job, pointed at the test's
gateway and scraped every second. The JupyterHub jobs (Kubernetes from
scrape-jupyterhub-kubernetes.yml, Docker from prometheus.yml) cannot discover anything here, so
their discovery is replaced by a file of targets carrying the same `__meta_*` labels a pod or a
container would have; Prometheus then applies the shipped relabeling for real, and its targets
API shows the outcome. Those targets are scraped hourly (their addresses are the rewritten
:8091 ones, on loopback), so they do not interfere with the test.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml

from tests.observability.exprs import PROMETHEUS_DIR, RULE_FILES

GATEWAY_JOB = "waiide-hub"
KUBERNETES_JOB = "waiide-hub-kubernetes"
DOCKER_JOB = "waiide-hub-docker"
EXAMPLE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
KUBERNETES_FRAGMENT = PROMETHEUS_DIR / "scrape-jupyterhub-kubernetes.yml"

# What Kubernetes pod discovery would report for the user pods of a z2jh namespace.
_POD = {"__meta_kubernetes_namespace": "jhub", "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_container_port_name": "notebook-port"}
KUBERNETES_DISCOVERED = [
    {"targets": ["127.0.0.1:8888"], "labels": {
        **_POD, "__meta_kubernetes_pod_ip": "127.0.0.1",
        "__meta_kubernetes_pod_name": "jupyter-alice-40example-2eorg",
        "__meta_kubernetes_pod_annotation_hub_jupyter_org_username": "alice@example.org"}},
    # the same pod's sidecar port: must not become a second target
    {"targets": ["127.0.0.1:9000"], "labels": {
        **_POD, "__meta_kubernetes_pod_ip": "127.0.0.1",
        "__meta_kubernetes_pod_container_port_name": "sidecar",
        "__meta_kubernetes_pod_name": "jupyter-alice-40example-2eorg",
        "__meta_kubernetes_pod_annotation_hub_jupyter_org_username": "alice@example.org"}},
    {"targets": ["127.0.0.2:8888"], "labels": {
        **_POD, "__meta_kubernetes_pod_ip": "127.0.0.2",
        "__meta_kubernetes_pod_name": "jupyter-bob--work",
        "__meta_kubernetes_pod_annotation_hub_jupyter_org_username": "bob",
        "__meta_kubernetes_pod_annotation_hub_jupyter_org_servername": "work"}},
    # a pod still starting: not scraped
    {"targets": ["127.0.0.4:8888"], "labels": {
        **_POD, "__meta_kubernetes_pod_phase": "Pending", "__meta_kubernetes_pod_ip": "127.0.0.4",
        "__meta_kubernetes_pod_name": "jupyter-dave",
        "__meta_kubernetes_pod_annotation_hub_jupyter_org_username": "dave"}},
]
KUBERNETES_EXPECTED = {
    ("http://127.0.0.1:8091/metrics", (("instance", "jupyter-alice-40example-2eorg"),
                                       ("job", KUBERNETES_JOB), ("namespace", "jhub"),
                                       ("user", "alice@example.org"))),
    ("http://127.0.0.2:8091/metrics", (("instance", "jupyter-bob--work"), ("job", KUBERNETES_JOB),
                                       ("namespace", "jhub"), ("server", "work"),
                                       ("user", "bob"))),
}

# What Docker discovery would report for DockerSpawner containers labelled as prometheus.yml says.
_CONTAINER = {"__meta_docker_network_name": "jupyterhub", "__meta_docker_port_private": "8888",
              "__meta_docker_container_label_waiide_hub_scrape": "true"}
DOCKER_DISCOVERED = [
    {"targets": ["127.0.0.3:8888"], "labels": {
        **_CONTAINER, "__meta_docker_network_ip": "127.0.0.3",
        "__meta_docker_container_name": "/jupyter-carol",
        "__meta_docker_container_label_waiide_hub_user": "carol",
        "__meta_docker_container_label_waiide_hub_server": ""}},
    # another port the image exposes, and the same container on a second network
    {"targets": ["127.0.0.3:8889"], "labels": {
        **_CONTAINER, "__meta_docker_port_private": "8889",
        "__meta_docker_network_ip": "127.0.0.3", "__meta_docker_container_name": "/jupyter-carol",
        "__meta_docker_container_label_waiide_hub_user": "carol"}},
    {"targets": ["127.0.0.5:8888"], "labels": {
        **_CONTAINER, "__meta_docker_network_name": "bridge",
        "__meta_docker_network_ip": "127.0.0.5", "__meta_docker_container_name": "/jupyter-carol",
        "__meta_docker_container_label_waiide_hub_user": "carol"}},
]
DOCKER_EXPECTED = {
    ("http://127.0.0.3:8091/metrics", (("instance", "jupyter-carol"), ("job", DOCKER_JOB),
                                       ("user", "carol"))),
}


def example_job(name: str) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    for job in doc["scrape_configs"]:
        if job["job_name"] == name:
            return dict(job)
    raise AssertionError(f"{EXAMPLE_CONFIG} has no job {name!r}")


def kubernetes_jobs() -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = yaml.safe_load(KUBERNETES_FRAGMENT.read_text(encoding="utf-8"))
    return jobs


def with_file_sd(job: dict[str, Any], targets_file: Path) -> dict[str, Any]:
    """`job` with its service discovery replaced by `targets_file`; relabeling untouched."""
    out = {k: copy.deepcopy(v) for k, v in job.items() if not k.endswith("_sd_configs")}
    out["file_sd_configs"] = [{"files": [str(targets_file)]}]
    out["scrape_interval"] = "1h"
    return out


def live_config(gateway_port: int, tmp: Path) -> dict[str, Any]:
    """Scrape the test gateway every second, evaluate the shipped rules every second."""
    gateway = example_job(GATEWAY_JOB)
    gateway["static_configs"] = [{"targets": [f"127.0.0.1:{gateway_port}"]}]
    gateway["scrape_interval"] = "1s"
    k8s_targets = tmp / "kubernetes-pods.json"
    k8s_targets.write_text(json.dumps(KUBERNETES_DISCOVERED))
    docker_targets = tmp / "docker-containers.json"
    docker_targets.write_text(json.dumps(DOCKER_DISCOVERED))
    (kubernetes,) = kubernetes_jobs()
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [gateway, with_file_sd(kubernetes, k8s_targets),
                           with_file_sd(example_job(DOCKER_JOB), docker_targets)],
    }
