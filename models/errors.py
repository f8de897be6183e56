"""Exceptions raised by the models package.

Every message says what was wrong and what is allowed, so that the CLI and
the API can show it to a person as it is.
"""

from __future__ import annotations

from sonicforge.errors import SonicForgeError


class ModelsError(SonicForgeError):
    """Base class for errors raised by ``models``."""


class InvalidSpecError(ModelsError, ValueError):
    """A generation request asked for something the backend cannot make."""


class UnknownBackendError(ModelsError, ValueError):
    """No generation backend is registered under the requested name."""


class ModelUnavailableError(ModelsError, RuntimeError):
    """A backend's model (weights, library) cannot be loaded here."""


class AudioDecodeError(ModelsError, ValueError):
    """Audio bytes could not be decoded (truncated, corrupt or unsupported)."""


class RegistryError(ModelsError, LookupError):
    """The model registry has no usable entry for a generator or alias."""
