"""Backends by name: the one place that maps a name to an implementation.

Heavy backends (torch, transformers) are imported only when asked for, so
the default install and the CLI stay light.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.errors import UnknownBackendError
from models.generation.base import GenerationBackend


def _procedural(**options: Any) -> GenerationBackend:
    from models.generation.procedural import ProceduralBackend

    return ProceduralBackend(**options)


def _musicgen(**options: Any) -> GenerationBackend:
    try:
        from models.generation.musicgen import MusicGenBackend
    except ImportError as exc:
        from models.errors import ModelUnavailableError

        raise ModelUnavailableError(
            f"backend 'musicgen' needs torch and transformers ({exc}); install the extra "
            "with `pip install torch==2.13.0 && pip install -e '.[musicgen]'`"
        ) from exc
    from sonicforge.settings import get_settings

    # Options given (a registered generator's parameters) win over settings.
    s = get_settings()
    defaults: dict[str, Any] = {
        "musicgen_path": s.musicgen_path,
        "device": s.musicgen_device,
        "dtype": s.musicgen_dtype,
        "allow_download": s.musicgen_allow_download,
    }
    if s.musicgen_path is None or not (s.musicgen_path / "config.json").is_file():
        # A musicgen_path that is itself a model directory is the default
        # model; otherwise it is searched for the model named in settings.
        defaults["model"] = s.musicgen_model
    return MusicGenBackend(**{**defaults, **options})


def _audiocraft(**options: Any) -> GenerationBackend:
    from models.generation.audiocraft_backend import AudiocraftBackend

    return AudiocraftBackend(**options)


_FACTORIES: dict[str, Callable[..., GenerationBackend]] = {
    "procedural": _procedural,
    "musicgen": _musicgen,
    "audiocraft": _audiocraft,
}


def backend_names() -> list[str]:
    return sorted(_FACTORIES)


def create_backend(name: str, **options: Any) -> GenerationBackend:
    """A backend instance; unknown names list the registered ones."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UnknownBackendError(
            f"unknown generation backend {name!r}; allowed: {', '.join(backend_names())}"
        ) from None
    return factory(**options)
