"""Where generation steps run on Kubernetes: the ``dagster-k8s/config`` of
each step of the generation job under ``k8s_job_executor``.

A MusicGen (or audiocraft) ``generated_tracks`` step goes to a GPU node
(node selector, the GPU taint's toleration, an ``nvidia.com/gpu`` limit);
procedural generation, scoring, mastering and the rotation stay on CPU
nodes. Plain dicts, read by the launchers (``serving``, ``orchestration``)
and checked by tests/deploy against the Job dagster-k8s builds from them.
The node labels and taint are the ones deploy/README.md asks the cluster's
node pools to carry.
"""

from __future__ import annotations

import json
from typing import Any

K8S_CONFIG_TAG = "dagster-k8s/config"
NODE_POOL_LABEL = "sonicforge.io/node-pool"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_BACKENDS = frozenset({"musicgen", "audiocraft"})
GENERATION_STEP = "generated_tracks"
CPU_STEPS = ("track_scores", "mastered_tracks", "rotation")


def gpu_step_config(*, gpus: int = 1) -> dict[str, Any]:
    return {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi"},
                "limits": {"memory": "24Gi", GPU_RESOURCE: gpus},
            }
        },
        "pod_spec_config": {
            "node_selector": {NODE_POOL_LABEL: "gpu"},
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def cpu_step_config() -> dict[str, Any]:
    return {
        "container_config": {
            "resources": {
                "requests": {"cpu": "1", "memory": "2Gi"},
                "limits": {"memory": "4Gi"},
            }
        },
        "pod_spec_config": {"node_selector": {NODE_POOL_LABEL: "cpu"}},
    }


def per_step_k8s_config(backend: str | None) -> dict[str, dict[str, Any]]:
    """``per_step_k8s_config`` of ``k8s_job_executor`` for a run on ``backend``
    (``None``: the registry's choice, taken as CPU unless it is MusicGen)."""
    generation = gpu_step_config() if backend in GPU_BACKENDS else cpu_step_config()
    return {GENERATION_STEP: generation, **{step: cpu_step_config() for step in CPU_STEPS}}


def k8s_execution_config(backend: str | None) -> dict[str, Any]:
    """The run config's ``execution`` block under ``k8s_job_executor``."""
    return {"config": {"per_step_k8s_config": per_step_k8s_config(backend)}}


def k8s_config_tag(config: dict[str, Any]) -> dict[str, str]:
    """The same config as a ``dagster-k8s/config`` op or run tag."""
    return {K8S_CONFIG_TAG: json.dumps(config, sort_keys=True)}
