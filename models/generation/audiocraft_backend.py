"""MusicGen through Meta's ``audiocraft``: a second implementation of the
``musicgen`` backend, used where ``audiocraft`` imports.

audiocraft 1.3.0 (its latest release) pins torch 2.1.0, torchaudio < 2.1.2,
xformers < 0.0.23 and av 11.0.0, and imports xformers and torchaudio when it
is imported. Beside this project's torch it usually does not import; then
this backend says why instead of working around it (no vendoring, no shims).
audiocraft continues long tracks itself (``extend_stride``), in token space,
so there is no audio seam to crossfade.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from models.errors import ModelUnavailableError
from models.generation.base import GeneratedTrack, GenerationBackend, TrackSpec
from models.generation.musicgen import (
    DEFAULT_MODEL,
    MAX_WINDOW_S,
    canonical_model_id,
    check_generation_options,
    generate_in_batches,
    missing_weights_message,
    select_device,
    to_output_format,
    validate_prompt_specs,
)
from models.generation.prompts import PROMPT_TEMPLATE_VERSION

AUDIOCRAFT_PINS = "torch==2.1.0, torchaudio<2.1.2, xformers<0.0.23, av==11.0.0"


@functools.cache
def audiocraft_import_error() -> str | None:
    """Why ``audiocraft`` does not import here, or ``None`` when it does."""
    try:
        import audiocraft.models  # noqa: F401
    except Exception as exc:  # any failure at import (ImportError, xformers/CUDA errors)
        return f"{type(exc).__name__}: {exc}"
    return None


def unavailable_message(reason: str) -> str:
    try:
        import torch

        torch_version = str(torch.__version__)
    except ImportError:
        torch_version = "not installed"
    return (
        f"the audiocraft backend is unavailable: importing audiocraft failed ({reason}). "
        f"audiocraft 1.3.0, its latest release, pins {AUDIOCRAFT_PINS} and imports xformers "
        f"and torchaudio at import; this environment has torch {torch_version}. Use backend "
        "'musicgen' (the same models through transformers), or run audiocraft in an "
        "environment built with its pins."
    )


class AudiocraftBackend(GenerationBackend):
    """MusicGen models through ``audiocraft.models.MusicGen``."""

    name = "audiocraft"
    supports_batching = True

    def __init__(
        self,
        *,
        model: str | None = None,
        device: str = "auto",
        guidance_scale: float = 3.0,
        temperature: float = 1.0,
        top_k: int = 250,
        window_s: float = MAX_WINDOW_S,
        context_s: float = 10.0,
        batch_size: int = 8,
        output_sample_rate: int | None = 44100,
        channels: int = 2,
        prompt_version: str = PROMPT_TEMPLATE_VERSION,
        _model: Any = None,
    ) -> None:
        reason = None if _model is not None else audiocraft_import_error()
        if reason is not None:
            raise ModelUnavailableError(unavailable_message(reason))
        check_generation_options(
            guidance_scale=guidance_scale,
            temperature=temperature,
            top_k=top_k,
            window_s=window_s,
            context_s=context_s,
            batch_size=batch_size,
            channels=channels,
        )
        self._model_id = canonical_model_id(model or DEFAULT_MODEL)
        self.requested_device = device
        self.guidance_scale = float(guidance_scale)
        self.temperature = float(temperature)
        self.top_k = int(top_k)
        self.window_s = float(window_s)
        self.context_s = float(context_s)
        self.batch_size = int(batch_size)
        self.output_sample_rate = output_sample_rate
        self.channels = channels
        self.prompt_version = prompt_version
        self._model = _model

    @property
    def model_name(self) -> str:
        return self._model_id

    @property
    def model_version(self) -> str:
        # audiocraft resolves the hub's default revision itself.
        return "audiocraft"

    def run_params(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "device": self.requested_device,
            "guidance_scale": self.guidance_scale,
            "temperature": self.temperature,
            "top_k": self.top_k,
            "window_s": self.window_s,
            "context_s": self.context_s,
            "batch_size": self.batch_size,
            "prompt_template_version": self.prompt_version,
        }

    def _loaded(self) -> Any:
        if self._model is None:
            from audiocraft.models import MusicGen

            device = select_device(self.requested_device)
            try:
                self._model = MusicGen.get_pretrained(self._model_id, device=device)
            except OSError as exc:  # hub unreachable, or files missing from the cache
                raise ModelUnavailableError(
                    f"{missing_weights_message(self._model_id, ['the Hugging Face cache (via audiocraft)'])} ({exc})"
                ) from exc
        return self._model

    def validate(self, specs: Sequence[TrackSpec], *, duration_s: float) -> list[TrackSpec]:
        return validate_prompt_specs(
            specs, duration_s=duration_s, prompt_version=self.prompt_version
        )

    def generate(
        self, specs: Sequence[TrackSpec], *, duration_s: float, seed: int
    ) -> list[GeneratedTrack]:
        import torch

        specs = self.validate(specs, duration_s=duration_s)
        model = self._loaded()
        model.set_generation_params(
            use_sampling=True,
            top_k=self.top_k,
            temperature=self.temperature,
            duration=float(duration_s),
            cfg_coef=self.guidance_scale,
            extend_stride=self.window_s - self.context_s,
        )
        model_sr = int(model.sample_rate)

        def generate_batch(texts: list[str], batch_seed: int) -> tuple[np.ndarray, int]:
            with torch.random.fork_rng():
                torch.manual_seed(batch_seed)
                wav = model.generate(texts, progress=False)
            return to_output_format(
                wav.detach().to(torch.float32).cpu().numpy(),
                model_sr,
                duration_s=duration_s,
                output_sample_rate=self.output_sample_rate,
                channels=self.channels,
            )

        return generate_in_batches(
            specs,
            seed=seed,
            batch_size=self.batch_size,
            prompt_version=self.prompt_version,
            generate_batch=generate_batch,
        )
