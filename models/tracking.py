"""Generation runs and generator versions in MLflow.

Every generation batch is an MLflow run in an experiment per backend, with
the generation parameters, speed, and (once the batch is scored) quality
metrics. Generator configurations - a backend name and its parameters - are
versions of one registered model, stored as a pyfunc that wraps the backend;
the alias ``production`` says which one the station uses, and moving it
switches the backend of the next run without a code change.

Everything goes through an explicit ``MlflowClient``: no process-global
tracking URI, so tests and several stores can live in one process.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from models.errors import InvalidSpecError, RegistryError
from models.generation.base import GenerationBackend, TrackSpec
from models.provenance import LICENSE_TAG, license_tags

GENERATOR_MODEL_NAME = "sonicforge-generator"
PRODUCTION_ALIAS = "production"
EXPERIMENT_PREFIX = "sonicforge-generation"
REGISTRY_EXPERIMENT = "sonicforge-generator-registry"
#: Backends that take sampling parameters (guidance, temperature, top-k).
MODEL_BACKENDS = frozenset({"musicgen", "audiocraft"})


@dataclass(frozen=True)
class GeneratorConfig:
    """What a registered generator is: a backend and its parameters."""

    backend: str
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorConfig:
        return cls(str(data["backend"]), dict(data.get("options") or {}))

    def create_backend(self) -> GenerationBackend:
        from models.generation.registry import create_backend

        return create_backend(self.backend, **self.options)

    def describe(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.backend}({opts})"


@dataclass(frozen=True)
class ResolvedGenerator:
    """A generator config and the registry entry it came from."""

    config: GeneratorConfig
    model_name: str | None = None
    version: str | None = None
    alias: str | None = None

    def tags(self) -> dict[str, str]:
        if self.version is None:
            return {"sonicforge.generator_source": "settings"}
        return {
            "sonicforge.generator_source": "registry",
            "sonicforge.generator_model": str(self.model_name),
            "sonicforge.generator_version": str(self.version),
            "sonicforge.generator_alias": str(self.alias or ""),
        }


_INPUT_SCHEMA = Schema(
    [
        ColSpec("string", "genre"),
        ColSpec("double", "duration_s"),
        ColSpec("long", "seed"),
        ColSpec("double", "bpm", required=False),
        ColSpec("string", "prompt", required=False),
    ]
)
_OUTPUT_SCHEMA = Schema(
    [
        ColSpec("string", "genre"),
        ColSpec("string", "prompt"),
        ColSpec("double", "bpm"),
        ColSpec("string", "musical_key"),
        ColSpec("long", "seed"),
        ColSpec("long", "sample_rate"),
        ColSpec("binary", "wav"),
    ]
)


class GeneratorModel(PythonModel):  # type: ignore[misc]
    """The registered generator: ``predict`` turns rows of (genre,
    duration_s, seed, bpm, prompt) into WAV audio with the wrapped backend."""

    def __init__(self) -> None:
        self.config: GeneratorConfig | None = None

    def load_context(self, context: Any) -> None:
        self.config = GeneratorConfig.from_dict(context.model_config)

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        import io

        import soundfile as sf

        assert self.config is not None, "load the model with mlflow.pyfunc.load_model"
        backend = self.config.create_backend()
        rows = []
        for rec in model_input.to_dict("records"):
            bpm = rec.get("bpm")
            spec = TrackSpec(
                genre=str(rec["genre"]),
                bpm=None if bpm is None or pd.isna(bpm) else float(bpm),
                prompt=rec.get("prompt") or None,
            )
            (track,) = backend.generate(
                [spec], duration_s=float(rec["duration_s"]), seed=int(rec["seed"])
            )
            buf = io.BytesIO()
            sf.write(buf, track.audio.T, track.sample_rate, format="WAV", subtype="FLOAT")
            rows.append(
                {
                    "genre": track.genre,
                    "prompt": track.prompt,
                    "bpm": float(track.bpm),
                    "musical_key": track.musical_key,
                    "seed": int(track.seed),
                    "sample_rate": int(track.sample_rate),
                    "wav": buf.getvalue(),
                }
            )
        return pd.DataFrame(rows)


def _param(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's limit for a param value


def _now_ms() -> int:
    return int(time.time() * 1000)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    """The id of experiment ``name``, created (under ``artifact_root`` for an
    embedded store; a server decides its own locations) when missing."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    location = (artifact_root / name).as_uri() if artifact_root else None
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # Another process created it between the lookup and here.
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


class GenerationTracking:
    """Generation runs and the generator registry in one MLflow store."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_root: str | Path | None = None,
        registry_uri: str | None = None,
        model_name: str = GENERATOR_MODEL_NAME,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        # Only for an embedded store: a server decides artifact locations.
        self.artifact_root = Path(artifact_root).absolute() if artifact_root else None
        self.model_name = model_name

    @functools.cached_property
    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    # -- experiments and runs ------------------------------------------------
    def experiment_id(self, name: str) -> str:
        return ensure_experiment(self.client, name, self.artifact_root)

    @staticmethod
    def experiment_name(backend: str) -> str:
        return f"{EXPERIMENT_PREFIX}-{backend}"

    def start_batch(
        self,
        *,
        backend: str,
        batch_id: str,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Open the run of one generation batch; returns its run id."""
        exp = self.experiment_id(self.experiment_name(backend))
        run = self.client.create_run(
            exp,
            run_name=batch_id,
            tags={"sonicforge.batch_id": batch_id, "sonicforge.backend": backend, **(tags or {})},
        )
        run_id = str(run.info.run_id)
        if params:
            self.log_params(run_id, params)
        return run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Log params; ``None`` values are left out (MLflow params are strings)."""
        self.client.log_batch(
            run_id, params=[Param(k, _param(v)) for k, v in params.items() if v is not None]
        )

    def finish_batch(
        self,
        run_id: str,
        *,
        tracks: Sequence[Mapping[str, Any]],
        status: str = "FINISHED",
    ) -> dict[str, float]:
        """Log the speed metrics and the tracks of a batch and close its run."""
        metrics = generation_metrics(tracks)
        ts = _now_ms()
        self.client.log_batch(run_id, metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()])
        if tracks:
            self.client.log_dict(
                run_id,
                {"tracks": [{k: _jsonable(v) for k, v in t.items()} for t in tracks]},
                "tracks.json",
            )
        self.client.set_terminated(run_id, status)
        return metrics

    def fail_batch(self, run_id: str, error: BaseException) -> None:
        self.client.set_tag(run_id, "sonicforge.error", f"{type(error).__name__}: {error}"[:5000])
        self.client.set_terminated(run_id, "FAILED")

    def log_quality(self, run_id: str, scores: Sequence[Mapping[str, Any]]) -> dict[str, float]:
        """Add the quality metrics of a scored batch to its (finished) run:
        per track as steps of ``quality_score`` and ``loudness_before_mastering_lufs``,
        and the batch mean, pass rate and mean loudness."""
        metrics = quality_metrics(scores)
        ts = _now_ms()
        entries = [Metric(k, v, ts, 0) for k, v in metrics.items()]
        for step, row in enumerate(scores):
            entries.append(Metric("quality_score", float(row["quality_score"]), ts, step))
            lufs = row.get("integrated_lufs")
            if lufs is not None and lufs == lufs:  # NaN for silence
                entries.append(Metric("loudness_before_mastering_lufs", float(lufs), ts, step))
        for i in range(0, len(entries), 900):  # MLflow takes 1000 metrics per call
            self.client.log_batch(run_id, metrics=entries[i : i + 900])
        self.client.set_tag(
            run_id,
            "sonicforge.failed_tracks",
            ",".join(str(r["track_id"]) for r in scores if not r["passed"])[:5000],
        )
        return metrics

    # -- the generator registry ----------------------------------------------
    def register_generator(
        self, config: GeneratorConfig, *, alias: str | None = None, description: str | None = None
    ) -> str:
        """A new version of the registered generator; returns its version."""
        exp = self.experiment_id(REGISTRY_EXPERIMENT)
        run = self.client.create_run(exp, run_name=f"register {config.backend}")
        run_id = str(run.info.run_id)
        self.client.log_batch(
            run_id,
            params=[Param("backend", config.backend)]
            + [Param(f"option.{k}", _param(v)) for k, v in sorted(config.options.items())],
        )
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            # MLflow asks for an input example; checking one would run the
            # generator (minutes on a CPU for MusicGen) at registration.
            warnings.filterwarnings("ignore", message=".*An input example was not provided")
            path = Path(tmp) / "generator"
            mlflow.pyfunc.save_model(
                str(path),
                python_model=str(Path(__file__).with_name("generator_pyfunc.py")),
                model_config=config.to_dict(),
                signature=ModelSignature(inputs=_INPUT_SCHEMA, outputs=_OUTPUT_SCHEMA),
                # Explicit: inferring requirements would import and run the model.
                pip_requirements=["sonicforge"],
            )
            self.client.log_artifacts(run_id, str(path), "generator")
        self.client.set_terminated(run_id, "FINISHED")
        try:
            self.client.create_registered_model(
                self.model_name,
                description="SonicForge generator configurations: a backend and its parameters. "
                f"The alias {PRODUCTION_ALIAS!r} is what the station generates with.",
            )
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        mv = self.client.create_model_version(
            self.model_name,
            source=f"{run.info.artifact_uri}/generator",
            run_id=run_id,
            tags={
                "backend": config.backend,
                "options": _param(config.options),
                **license_tags(config.backend),
            },
            description=description or config.describe(),
        )
        if alias:
            self.set_alias(str(mv.version), alias)
        return str(mv.version)

    def set_alias(self, version: str, alias: str = PRODUCTION_ALIAS) -> None:
        """Point ``alias`` at ``version`` (the next run resolves it)."""
        try:
            self.client.get_model_version(self.model_name, str(version))
        except MlflowException:
            known = [v["version"] for v in self.generator_versions()]
            raise RegistryError(
                f"registered generator {self.model_name!r} has no version {version!r}; "
                f"versions: {', '.join(known) or 'none'}"
            ) from None
        self.client.set_registered_model_alias(self.model_name, alias, str(version))

    def load_config(self, version: str) -> GeneratorConfig:
        """The generator config of a version, loaded as its pyfunc."""
        mv = self.client.get_model_version(self.model_name, str(version))
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=mv.source, tracking_uri=self.tracking_uri
        )
        model = mlflow.pyfunc.load_model(local)
        wrapped = model.unwrap_python_model()
        assert isinstance(wrapped, GeneratorModel) and wrapped.config is not None
        return wrapped.config

    def resolve(
        self, alias: str = PRODUCTION_ALIAS, *, bootstrap: GeneratorConfig | None = None
    ) -> ResolvedGenerator:
        """The generator ``alias`` points at. With ``bootstrap`` and an empty
        registry, that config is registered first and given the alias (the
        procedural entry is created this way on the first run)."""
        try:
            mv = self.client.get_model_version_by_alias(self.model_name, alias)
        except MlflowException:
            versions = self.generator_versions()
            if versions or bootstrap is None:
                listed = ", ".join(f"{v['version']} ({v['backend']})" for v in versions) or "none"
                raise RegistryError(
                    f"registered generator {self.model_name!r} has no alias {alias!r}; versions: "
                    f"{listed}. Set it with `sonicforge models alias VERSION --alias {alias}`"
                ) from None
            version = self.register_generator(
                bootstrap,
                alias=alias,
                description=f"{bootstrap.describe()}, registered on first run",
            )
            mv = self.client.get_model_version(self.model_name, version)
        return ResolvedGenerator(
            self.load_config(str(mv.version)), self.model_name, str(mv.version), alias
        )

    def generator_versions(self) -> list[dict[str, Any]]:
        """Every registered generator version, newest first, with its aliases."""
        try:
            rm = self.client.get_registered_model(self.model_name)
        except MlflowException:
            return []
        aliases: dict[str, list[str]] = {}
        for alias, version in (rm.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        out = []
        for mv in self.client.search_model_versions(f"name='{self.model_name}'"):
            out.append(
                {
                    "version": str(mv.version),
                    "backend": mv.tags.get("backend", "?"),
                    "options": mv.tags.get("options", "{}"),
                    "license": mv.tags.get(LICENSE_TAG)
                    or license_tags(mv.tags.get("backend", ""))[LICENSE_TAG],
                    "aliases": sorted(aliases.get(str(mv.version), [])),
                    "description": mv.description or "",
                }
            )
        return sorted(out, key=lambda v: int(v["version"]), reverse=True)

    def runs(self, backend: str) -> list[Any]:
        """The generation runs of ``backend``, newest first."""
        exp = self.client.get_experiment_by_name(self.experiment_name(backend))
        if exp is None:
            return []
        return list(
            self.client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def generation_metrics(tracks: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Speed of a batch from its ``tracks`` rows: real-time factor is seconds
    of audio per second of generation (above 1 is faster than real time)."""
    rows = list(tracks)
    audio_s = sum(float(r["duration_s"]) for r in rows)
    gen_s = sum(float(r["generation_s"]) for r in rows)
    return {
        "tracks": float(len(rows)),
        "audio_seconds": audio_s,
        "generation_seconds": gen_s,
        "realtime_factor": audio_s / gen_s if gen_s > 0 else 0.0,
    }


def quality_metrics(scores: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Batch quality from ``track_scores`` rows."""
    rows = list(scores)
    if not rows:
        return {}
    lufs = [
        float(r["integrated_lufs"])
        for r in rows
        if r.get("integrated_lufs") is not None and r["integrated_lufs"] == r["integrated_lufs"]
    ]
    out = {
        "mean_quality_score": sum(float(r["quality_score"]) for r in rows) / len(rows),
        "pass_rate": sum(1 for r in rows if r["passed"]) / len(rows),
        "scored_tracks": float(len(rows)),
    }
    if lufs:
        out["mean_loudness_before_mastering_lufs"] = sum(lufs) / len(lufs)
    return out


def batch_params(
    backend: GenerationBackend,
    *,
    duration_s: float,
    seed: int,
    count: int,
    genres: Sequence[str],
) -> dict[str, Any]:
    """The MLflow params of a generation batch: what was asked and what made it."""
    return {
        "backend": backend.name,
        "model_id": backend.model_name,
        "model_revision": backend.model_version,
        "duration_s": duration_s,
        "seed": seed,
        "count": count,
        "genres": ",".join(dict.fromkeys(genres)),
        **{k: v for k, v in backend.run_params().items() if k not in ("model", "model_revision")},
    }


def log_batch_quality(
    tracking: GenerationTracking,
    tracks: Sequence[Mapping[str, Any]],
    scores: Sequence[Mapping[str, Any]],
) -> dict[str, dict[str, float]]:
    """Log ``track_scores`` rows to the generation runs their tracks came from."""
    run_of = {t["track_id"]: t.get("mlflow_run_id") for t in tracks}
    seed_of = {t["track_id"]: t.get("seed") or 0 for t in tracks}
    by_run: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(scores, key=lambda r: seed_of.get(r["track_id"], 0)):
        run_id = run_of.get(row["track_id"])
        if run_id:
            by_run.setdefault(run_id, []).append(row)
    return {run_id: tracking.log_quality(run_id, rows) for run_id, rows in by_run.items()}


def sampling_overrides(
    backend: str,
    *,
    guidance_scale: float | None = None,
    temperature: float | None = None,
    top_k: int | None = None,
) -> dict[str, Any]:
    """Per-run sampling options for a model backend; a clear error for a
    backend that takes none."""
    given = {
        k: v
        for k, v in (
            ("guidance_scale", guidance_scale),
            ("temperature", temperature),
            ("top_k", top_k),
        )
        if v is not None
    }
    if given and backend not in MODEL_BACKENDS:
        raise InvalidSpecError(
            f"{', '.join(given)} apply to the model backends ({', '.join(sorted(MODEL_BACKENDS))}); "
            f"backend {backend!r} takes none"
        )
    return given
