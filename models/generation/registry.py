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


_FACTORIES: dict[str, Callable[..., GenerationBackend]] = {"procedural": _procedural}


def register_backend(name: str, factory: Callable[..., GenerationBackend]) -> None:
    """Make ``factory`` available as backend ``name`` (used by optional backends)."""
    _FACTORIES[name] = factory


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
