"""Static checks of the Kubernetes manifests in deploy/k8s (no cluster needed).

Every document parses; ``kubectl kustomize`` renders the same objects (when kubectl is
installed); every container runs a command the real `sluice` CLI has, from the image
docker-compose.yml builds; every standard-mode worker kind has exactly one Deployment
and one HPA; the probes name paths the health server really serves, on the port the
settings give it; the HPA metric is one `/metrics` really exports, with the queue
labels of the kind it scales; the drain fits in the termination grace period; and no
Secret carries a value.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sluice.config import DeploymentMode
from sluice.queues import TaskQueue
from tests.test_compose import (
    SECRET_KEY,
    _resolve_cli,
    interpolate,
    url_passwords,
    walk_strings,
)
from workers.kinds import WORKER_KINDS, kinds_for_mode
from workers.registry import WORKFLOWS

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
# Files kept out of `kubectl apply -k` on purpose (the kustomization's header says why).
NOT_APPLIED = {"secret.template.yaml", "prometheus-adapter-values.yaml"}
SECRET_TEMPLATE = K8S / "secret.template.yaml"
ADAPTER_VALUES = K8S / "prometheus-adapter-values.yaml"
KIND_LABEL = "sluice.dev/worker-kind"


# --------------------------------------------------------------------------- loading


def load(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path.name}: no YAML documents"
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
    return docs


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    (doc,) = load(KUSTOMIZATION)
    assert doc["kind"] == "Kustomization"
    return doc


@pytest.fixture(scope="module")
def objects(kustomization: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object `kubectl apply -k deploy/k8s` creates, in file order."""
    found = []
    for name in kustomization["resources"]:
        found += load(K8S / name)
    return found


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def argv(container: dict[str, Any]) -> list[str]:
    """What runs: command + args; without a command, the image's ENTRYPOINT `sluice`."""
    command = [str(c) for c in container.get("command", [])]
    args = [str(a) for a in container.get("args", [])]
    if not command:
        return ["sluice", *args]
    return command + args


def worker_deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """kind -> its Deployment (asserting one per kind)."""
    found: dict[str, dict[str, Any]] = {}
    for dep in of_kind(objects, "Deployment"):
        run = argv(pod_spec(dep)["containers"][0])
        if run[1:2] == ["worker"]:
            kind = run[2]
            assert kind not in found, f"two Deployments run worker kind {kind}"
            found[kind] = dep
    return found


def container_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"{container['name']}: no container port named {port!r}"
    return int(named[port])


def config_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    (config,) = of_kind(objects, "ConfigMap")
    return {str(k): str(v) for k, v in config["data"].items()}


# --------------------------------------------------------------------------- the files


def test_every_yaml_file_parses_and_is_applied_or_documented(
    kustomization: dict[str, Any],
) -> None:
    files = {p.name for p in K8S.glob("*.yaml")} - {KUSTOMIZATION.name}
    applied = set(kustomization["resources"])
    assert applied <= files, f"kustomization lists missing files: {applied - files}"
    assert files - applied == NOT_APPLIED, "each file is applied or named in NOT_APPLIED"
    header = KUSTOMIZATION.read_text().split("apiVersion:", 1)[0]
    for name in NOT_APPLIED:
        assert name in header, f"{name}: say in kustomization.yaml why it is not applied"
    for name in files:
        load(K8S / name)


def test_objects_are_well_formed(objects: list[dict[str, Any]]) -> None:
    seen = set()
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        name = obj.get("metadata", {}).get("name")
        assert name and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert (obj["kind"], name) not in seen, f"duplicate {obj['kind']}/{name}"
        seen.add((obj["kind"], name))
    for dep in of_kind(objects, "Deployment"):
        selector = dep["spec"]["selector"]["matchLabels"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"{dep['metadata']['name']}: selector"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_same_objects(objects: list[dict[str, Any]]) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        (o["kind"], o["metadata"]["name"]) for o in objects
    }
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "sluice", doc["metadata"]


# --------------------------------------------------------------------------- images, commands


def test_images_are_the_one_compose_builds(
    objects: list[dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = interpolate(compose["x-sluice"]["image"])
    assert image == "sluice:local"
    repository, _, tag = image.partition(":")
    for obj in objects:
        if "template" in obj.get("spec", {}):
            for c in containers(obj):
                assert c["image"] == image, f"{obj['metadata']['name']}: {c['image']}"
    (entry,) = kustomization["images"]
    assert entry["name"] == repository and entry.get("newTag") == tag


def test_every_command_is_a_real_sluice_command(objects: list[dict[str, Any]]) -> None:
    checked = 0
    for obj in objects:
        if "template" not in obj.get("spec", {}):
            continue
        for c in containers(obj):
            run = argv(c)
            assert run[0] == "sluice", f"{obj['metadata']['name']}: {run}"
            path, command, rest = _resolve_cli(run[1:])
            try:
                command.make_context("sluice " + " ".join(path), list(rest))
            except Exception as exc:  # click's UsageError family
                pytest.fail(f"{obj['metadata']['name']}: `{' '.join(run)}` does not parse: {exc}")
            checked += 1
    assert checked >= 10


def test_migrate_job_runs_the_real_migration(objects: list[dict[str, Any]]) -> None:
    (job,) = of_kind(objects, "Job")
    runs = [argv(c) for c in containers(job)]
    assert ["sluice", "temporal", "setup"] in runs
    assert runs[-1] == ["sluice", "migrate"]
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")


# --------------------------------------------------------------------------- workers


def test_one_deployment_per_standard_worker_kind(objects: list[dict[str, Any]]) -> None:
    standard = {k.name for k in kinds_for_mode(DeploymentMode.STANDARD)}
    deployments = worker_deployments(objects)
    assert set(deployments) == standard
    for kind, dep in deployments.items():
        assert dep["metadata"]["labels"][KIND_LABEL] == kind
        assert dep["spec"]["template"]["metadata"]["labels"][KIND_LABEL] == kind
        assert dep["metadata"]["name"] == "sluice-worker-" + kind.replace("_", "-")
        strategy = dep["spec"]["strategy"]
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, kind


def test_probes_point_at_the_health_port(objects: list[dict[str, Any]]) -> None:
    health_port = int(config_data(objects)["HEALTH_PORT"])
    for kind, dep in worker_deployments(objects).items():
        c = pod_spec(dep)["containers"][0]
        probes = {name: c[name]["httpGet"] for name in ("readinessProbe", "livenessProbe")}
        assert probes["readinessProbe"]["path"] == "/readyz", kind
        assert probes["livenessProbe"]["path"] == "/healthz", kind
        if "startupProbe" in c:
            probes["startupProbe"] = c["startupProbe"]["httpGet"]
            assert probes["startupProbe"]["path"] == "/healthz", kind
        for name, probe in probes.items():
            assert container_port(c, probe["port"]) == health_port, (kind, name)
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(health_port)
        assert annotations["prometheus.io/path"] == "/metrics"


async def test_probe_paths_are_served_by_the_health_server(
    objects: list[dict[str, Any]],
) -> None:
    """The real health server (sluice/health.py) answers every path the manifests use."""
    from sluice.health import Readiness, serve_health
    from sluice.metrics import MetricsEndpoint

    paths = set()
    for dep in worker_deployments(objects).values():
        c = pod_spec(dep)["containers"][0]
        for name in ("readinessProbe", "livenessProbe", "startupProbe"):
            if name in c:
                paths.add(c[name]["httpGet"]["path"])
        paths.add(dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
    assert paths == {"/healthz", "/readyz", "/metrics"}
    server = await serve_health(Readiness(), 0, "127.0.0.1", metrics=MetricsEndpoint())
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for path in sorted(paths):
                assert (await http.get(path)).status_code == 200, path
            assert (await http.get("/nowhere")).status_code == 404
    finally:
        server.close()


def test_the_drain_fits_in_the_grace_period(objects: list[dict[str, Any]]) -> None:
    (config,) = of_kind(objects, "ConfigMap")
    drain = float(config["data"]["WORKER_SHUTDOWN_SECONDS"])
    for kind, dep in worker_deployments(objects).items():
        grace = pod_spec(dep)["terminationGracePeriodSeconds"]
        # The drain, then closing the workers, the health server and the DB pools.
        assert grace >= 2 * drain, f"{kind}: {grace}s for a {drain:g}s drain"


def test_resource_requests_say_where_they_come_from(objects: list[dict[str, Any]]) -> None:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}

    def size(value: str) -> int:
        number, unit = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", value).groups()  # type: ignore[union-attr]
        return int(number) * units[unit]

    for obj in objects:
        if "template" not in obj.get("spec", {}):
            continue
        for c in containers(obj):
            resources = c["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), obj["metadata"]["name"]
            assert size(resources["limits"]["memory"]) >= size(resources["requests"]["memory"])
            assert "cpu" not in resources.get("limits", {}), "no CPU limits (see workers.yaml)"
    text = (K8S / "workers.yaml").read_text()
    assert "bench/capacity.py" in text and (ROOT / "bench" / "capacity.py").is_file()
    for kind in worker_deployments(objects):
        assert "measured: idle" in text.split(f'"worker", "{kind}"', 1)[1].split("---", 1)[0]


# --------------------------------------------------------------------------- autoscaling


def exported_metric_names() -> dict[str, set[str]]:
    """Metric families /metrics exports from the platform figures, with their labels."""
    from sluice.metrics import FiguresCollector
    from sluice.monitoring import Figures, QueueFigures

    collector = FiguresCollector()
    collector.figures = Figures([QueueFigures("docprocessing", "activity", backlog=3)], [], [])
    found: dict[str, set[str]] = {}
    for family in collector.collect():
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def selected_queues(selector: dict[str, Any]) -> tuple[set[str], str]:
    labels = selector.get("matchLabels", {})
    queues = {labels["task_queue"]} if "task_queue" in labels else set()
    for expr in selector.get("matchExpressions", []):
        assert expr["key"] == "task_queue" and expr["operator"] == "In", expr
        queues |= set(expr["values"])
    return queues, labels["task_type"]


def test_every_worker_kind_scales_on_its_own_backlog(objects: list[dict[str, Any]]) -> None:
    exported = exported_metric_names()
    deployments = worker_deployments(objects)
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    assert set(hpas) == {d["metadata"]["name"] for d in deployments.values()}
    for kind, dep in deployments.items():
        hpa = hpas[dep["metadata"]["name"]]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "External"
        name = metric["external"]["metric"]["name"]
        assert name == "sluice_task_queue_backlog_tasks"
        assert name in exported, f"/metrics exports no {name}: {sorted(exported)}"
        queues, task_type = selected_queues(metric["external"]["metric"]["selector"])
        assert {"task_queue", "task_type"} <= exported[name]
        assert queues == {q.value for q in WORKER_KINDS[kind].queues}, kind
        runs_workflows = any(WORKFLOWS.get(TaskQueue(q)) for q in queues)
        assert task_type == ("workflow" if runs_workflows else "activity"), kind
        assert metric["external"]["target"]["type"] == "AverageValue"
        assert float(metric["external"]["target"]["averageValue"]) > 0
    monitoring = hpas[deployments["monitoring"]["metadata"]["name"]]
    assert monitoring["spec"]["maxReplicas"] == 1, "two monitoring pods export gauges twice"


async def test_backlog_metric_is_on_a_real_metrics_page() -> None:
    """The HPA's metric, as the monitoring worker's /metrics renders it."""
    from sluice.metrics import MetricsEndpoint
    from sluice.monitoring import Figures, QueueFigures

    endpoint = MetricsEndpoint()
    endpoint.publish(Figures([QueueFigures("docprocessing", "activity", backlog=7)], [], []))
    text = (await endpoint.render()).decode()
    samples = {
        (s.name, s.labels.get("task_queue"), s.labels.get("task_type")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("sluice_task_queue_backlog_tasks", "docprocessing", "activity")] == 7


def test_prometheus_adapter_serves_the_hpa_metric(objects: list[dict[str, Any]]) -> None:
    (values,) = load(ADAPTER_VALUES)
    (rule,) = values["rules"]["external"]
    names = {
        h["spec"]["metrics"][0]["external"]["metric"]["name"]
        for h in of_kind(objects, "HorizontalPodAutoscaler")
    }
    assert rule["name"]["as"] in names and len(names) == 1
    assert rule["seriesQuery"].startswith(rule["name"]["as"] + "{")
    assert re.fullmatch(rule["name"]["matches"], rule["name"]["as"])
    assert rule["metricsQuery"].startswith("max by ("), "sum would count a rollout twice"


# --------------------------------------------------------------------------- settings, secrets


def test_config_and_secret_keys_pass_settings_validation(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sluice.config import load_settings

    data = config_data(objects)
    (template,) = load(SECRET_TEMPLATE)
    # Example values in place of the template's empty ones (what an operator fills in).
    examples = {
        "DATABASE_URL": "postgresql://sluice:example@postgres:5432/sluice",
        "REDIS_URL": "redis://redis:6379/0",
    }
    for key in template["stringData"]:
        monkeypatch.setenv(key, examples.get(key, ""))
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.health_port == int(data["HEALTH_PORT"])
    assert settings.temporal_address == data["TEMPORAL_ADDRESS"]
    assert str(settings.sluice_data_dir) == data["SLUICE_DATA_DIR"]
    for dep in of_kind(objects, "Deployment"):
        for c in pod_spec(dep)["containers"]:
            for mount in c.get("volumeMounts", []):
                if mount["name"] == "data":
                    assert mount["mountPath"] == data["SLUICE_DATA_DIR"]


def test_no_secret_carries_a_value(objects: list[dict[str, Any]]) -> None:
    assert not of_kind(objects, "Secret"), "Secrets are applied by hand, never by apply -k"
    (template,) = load(SECRET_TEMPLATE)
    assert template["kind"] == "Secret"
    values = {**template.get("stringData", {}), **template.get("data", {})}
    assert {"DATABASE_URL", "REDIS_URL", "SLUICE_PAYLOAD_KEYS", "SLUICE_CODEC_TOKEN"} <= set(values)
    assert all(v in ("", None) for v in values.values()), f"a value in the template: {values}"
    referenced = {
        ref["secretRef"]["name"]
        for obj in objects
        if "template" in obj.get("spec", {})
        for c in containers(obj)
        for ref in c.get("envFrom", [])
        if "secretRef" in ref
    }
    assert referenced == {template["metadata"]["name"]}


def test_no_secret_in_plain_text(objects: list[dict[str, Any]]) -> None:
    for key in config_data(objects):
        assert not SECRET_KEY.search(key), f"ConfigMap holds a secret-looking key {key}"
        assert key not in ("DATABASE_URL", "REDIS_URL", "SLUICE_PAYLOAD_KEYS")
    for obj in objects:
        for path, value in walk_strings(obj):
            assert not url_passwords(value), f"{obj['metadata']['name']}.{path}: {value}"
        if "template" in obj.get("spec", {}):
            for c in containers(obj):
                for env in c.get("env", []):
                    if SECRET_KEY.search(env["name"]):
                        assert "value" not in env, f"{env['name']} given in plain text"


# --------------------------------------------------------------------------- codec server


def test_codec_server_deployment_and_service(objects: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    codec = deployments["sluice-codec-server"]
    (c,) = pod_spec(codec)["containers"]
    run = argv(c)
    assert run[:2] == ["sluice", "codec-server"]
    port = int(run[run.index("--port") + 1])
    assert run[run.index("--host") + 1] == "0.0.0.0"
    assert container_port(c, "codec") == port
    for probe in ("readinessProbe", "livenessProbe"):
        assert container_port(c, c[probe]["tcpSocket"]["port"]) == port
    (service,) = of_kind(objects, "Service")
    assert service["spec"]["selector"].items() <= (
        codec["spec"]["template"]["metadata"]["labels"].items()
    )
    (svc_port,) = service["spec"]["ports"]
    assert container_port(c, svc_port["targetPort"]) == port
