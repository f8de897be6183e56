"""deploy/: every manifest and every Job dagster-k8s would build is valid
against the Kubernetes schemas (kubernetes-validate, offline), and the
manifests agree with the code on image, ports, probe paths and settings."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sonicforge.k8s_steps import (
    GPU_RESOURCE,
    NODE_POOL_LABEL,
    cpu_step_config,
    gpu_step_config,
    k8s_config_tag,
    per_step_k8s_config,
)
from sonicforge.settings import Settings

kubernetes_validate = pytest.importorskip("kubernetes_validate")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S_VERSION = "1.33.0"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"ghcr.io/sonicforge/sonicforge:{VERSION}"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


DOCS = _documents()


def _kind(kind: str, name: str) -> dict[str, Any]:
    for _, doc in DOCS:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} under deploy/k8s")


def _validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("name,doc", DOCS, ids=[n for n, _ in DOCS])
def test_every_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any]) -> None:
    _validate(doc)


def test_an_invalid_manifest_is_refused() -> None:
    # The validator must be able to fail: a port as a word, an unknown field.
    bad = json.loads(json.dumps(_kind("Service", "sonicforge-api")))
    bad["spec"]["ports"][0]["port"] = "eighty"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(bad)
    bad = json.loads(json.dumps(_kind("Deployment", "sonicforge-api")))
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(bad)


def _containers() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, doc in DOCS:
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec") if "template" in spec else None
        for c in (pod or {}).get("containers", []):
            out.append((name, c))
    return out


def test_images_are_this_release() -> None:
    images = {c["image"] for _, c in _containers()}
    assert images == {IMAGE}
    values = yaml.safe_load((DEPLOY / "dagster" / "values.yaml").read_text())
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert f"{location['image']['repository']}:{location['image']['tag']}" == IMAGE


def test_api_ports_probes_and_routes_agree_with_the_code(tmp_path: Path) -> None:
    from serving.app import create_app

    defaults = Settings()
    config = _kind("ConfigMap", "sonicforge-config")["data"]
    api = _kind("Deployment", "sonicforge-api")["spec"]["template"]["spec"]["containers"][0]
    (port,) = api["ports"]
    assert port["containerPort"] == int(config["SONICFORGE_API_PORT"]) == defaults.api_port
    assert api["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
    assert api["livenessProbe"]["httpGet"] == {"path": "/live", "port": port["name"]}
    assert api["resources"]["requests"]["cpu"] and api["resources"]["requests"]["memory"]
    service = _kind("Service", "sonicforge-api")["spec"]
    assert service["ports"][0]["targetPort"] == port["name"]
    # The probe paths and the ingress paths are routes the app really has.
    app = create_app(
        Settings(
            var_dir=tmp_path / "var",
            jwt_secret="x" * 40,
            environment="test",
            bcrypt_rounds=4,
        )
    )
    paths = set(app.openapi()["paths"])
    assert {"/ready", "/live", "/hls/{path}", "/stream.mp3"} <= paths
    ingress = _kind("Ingress", "sonicforge")["spec"]["rules"][0]["http"]["paths"]
    for rule in ingress:
        prefix = rule["path"]
        assert prefix == "/" or any(p.startswith(prefix.rstrip("/")) for p in paths), prefix
        assert rule["backend"]["service"] == {"name": "sonicforge-api", "port": {"name": "http"}}


def test_hpa_pdb_and_streamer_standby() -> None:
    hpa = _kind("HorizontalPodAutoscaler", "sonicforge-api")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "sonicforge-api"
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"
    pdb = _kind("PodDisruptionBudget", "sonicforge-api")["spec"]
    assert pdb["minAvailable"] < hpa["minReplicas"]
    streamer = _kind("Deployment", "sonicforge-streamer")["spec"]
    assert streamer["replicas"] == 2
    config = _kind("ConfigMap", "sonicforge-config")["data"]
    assert config["SONICFORGE_STREAM_STANDBY"] == "true"


def test_the_config_map_is_a_valid_production_profile() -> None:
    env = dict(_kind("ConfigMap", "sonicforge-config")["data"])
    # What the Secret adds (deploy/README.md): database URLs and the JWT key.
    secrets = {
        "SONICFORGE_APP_DATABASE_URL": "postgresql+psycopg://app:pw@postgres/sonicforge",
        "SONICFORGE_DAGSTER_POSTGRES_URL": "postgresql://dagster:pw@postgres/dagster",
        "SONICFORGE_JWT_SECRET": "k" * 64,
    }
    fields = {k.removeprefix("SONICFORGE_").lower(): v for k, v in {**env, **secrets}.items()}
    settings = Settings(**fields)  # every key is a setting of the right type
    unknown = set(fields) - set(Settings.model_fields)
    assert not unknown, f"ConfigMap keys that are no setting: {sorted(unknown)}"
    settings.check_production()
    settings.check_serving()
    assert settings.redis_url and settings.redis_url.startswith("redis+sentinel://")
    assert settings.dagster_run_executor == "k8s"
    mlflow = _kind("Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    assert settings.mlflow_tracking_uri.endswith(f":{mlflow['ports'][0]['containerPort']}")
    assert mlflow["ports"][0]["containerPort"] == settings.mlflow_ui_port
    assert "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)" in mlflow["args"]
    assert any(a.startswith("--artifacts-destination=s3://") for a in mlflow["args"])


def test_dagster_values_name_the_chart_and_the_code_location() -> None:
    text = (DEPLOY / "dagster" / "values.yaml").read_text()
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    dagster_version = next(d.split("==")[1] for d in pinned if d.startswith("dagster=="))
    assert f"chart version\n# {dagster_version}" in text or f"version {dagster_version}" in text
    values = yaml.safe_load(text)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is False
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "sonicforge/kind", "value": "generation", "limit": 4} in limits
    assert values["dagsterDaemon"]["runRetries"]["enabled"] is True
    (location,) = values["dagster-user-deployments"]["deployments"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    args = location["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == pyproject["module_name"]
    assert args[args.index("--location-name") + 1] == pyproject["code_location_name"]
    # The generation job's run tag, which the limit counts, is the job's.
    from orchestration.jobs import generate_tracks_job

    assert generate_tracks_job.run_tags == {"sonicforge/kind": "generation"}


# -- the Jobs dagster-k8s would launch -----------------------------------


def _job_config() -> Any:
    from dagster_k8s.job import DagsterK8sJobConfig

    return DagsterK8sJobConfig(
        job_image=IMAGE,
        dagster_home="/opt/dagster/dagster_home",
        image_pull_policy="IfNotPresent",
        instance_config_map="dagster-instance",
        env_config_maps=["sonicforge-config"],
        env_secrets=["sonicforge-secrets"],
    )


def _step_job(config: dict[str, Any], step: str) -> dict[str, Any]:
    from dagster_k8s.job import UserDefinedDagsterK8sConfig, construct_dagster_k8s_job
    from kubernetes.client import ApiClient

    job = construct_dagster_k8s_job(
        _job_config(),
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{step.replace('_', '-')}",
        user_defined_k8s_config=UserDefinedDagsterK8sConfig.from_dict(config),
        component="step_worker",
    )
    return ApiClient().sanitize_for_serialization(job)


def test_a_musicgen_step_job_lands_on_a_gpu_node() -> None:
    from dagster_k8s.job import get_user_defined_k8s_config

    # The per-step config the launchers pass, and the same as an op tag.
    per_step = per_step_k8s_config("musicgen")
    tagged = get_user_defined_k8s_config(k8s_config_tag(per_step["generated_tracks"]))
    job = _step_job(tagged.to_dict(), "generated_tracks")
    _validate(job)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert pod["nodeSelector"] == {NODE_POOL_LABEL: "gpu"}
    assert {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert str(container["resources"]["limits"][GPU_RESOURCE]) == "1"
    assert {"configMapRef": {"name": "sonicforge-config"}} in container["envFrom"]


@pytest.mark.parametrize("backend", ["procedural", None])
def test_procedural_and_later_steps_stay_on_cpu_nodes(backend: str | None) -> None:
    per_step = per_step_k8s_config(backend)
    assert per_step["generated_tracks"] == cpu_step_config()
    for step, config in per_step.items():
        job = _step_job(config, step)
        _validate(job)
        pod = job["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {NODE_POOL_LABEL: "cpu"}
        assert GPU_RESOURCE not in pod["containers"][0]["resources"].get("limits", {})
        assert "tolerations" not in pod or not pod["tolerations"]
    assert per_step_k8s_config("musicgen")["track_scores"] == cpu_step_config()
    assert per_step_k8s_config("musicgen")["generated_tracks"] == gpu_step_config()


def test_the_k8s_executor_accepts_the_launchers_run_config() -> None:
    """The run config the API would send under k8s_job_executor is one the
    executor's own config schema accepts."""
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor

    from sonicforge.k8s_steps import k8s_execution_config

    result = process_config(
        k8s_job_executor.config_schema.config_type, k8s_execution_config("musicgen")["config"]
    )
    assert result.success, result.errors


def test_the_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) >= 2, "one build stage and one runtime stage"
    base = next(line for line in lines if line.startswith("ARG PYTHON_IMAGE="))
    assert base.split("=", 1)[1].count(".") >= 2 and "latest" not in base  # python:3.11.x-…
    assert any(line.startswith("ARG TORCH_VARIANT=cpu") for line in lines)
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in text
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    torch = next(d for d in pinned["musicgen"] if d.startswith("torch=="))
    assert f"ARG TORCH_VERSION={torch.split('==')[1]}" in lines
    user = [line for line in lines if line.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    runtime = text[text.rindex("FROM ") :]
    assert "build-essential" not in runtime, "compilers stay in the build stage"
    exposed = {int(p) for line in lines if line.startswith("EXPOSE ") for p in line.split()[1:]}
    values = yaml.safe_load((DEPLOY / "dagster" / "values.yaml").read_text())
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert {Settings().api_port, location["port"]} <= exposed
    # Pods run as the image's user.
    uid = int(user.split()[1].split(":")[0])
    for _, doc in DOCS:
        pod = doc.get("spec", {}).get("template", {}).get("spec")
        if pod:
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"].get("runAsUser", uid) == uid


def test_the_docker_context_leaves_out_local_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", ".env"} <= ignored
