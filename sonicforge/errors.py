"""Exceptions of the core package."""

from __future__ import annotations


class SonicForgeError(Exception):
    """The root of every SonicForge error (core, models, serving, streaming,
    CLI); messages are meant for people."""


class ConfigurationError(SonicForgeError, ValueError):
    """A setting has a value that cannot work, with what is allowed."""


class UnknownTableError(SonicForgeError, KeyError):
    """A lakehouse table name that no contract defines."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class StorageError(SonicForgeError, OSError):
    """Reading or writing an object in the audio store failed."""


class StationStateError(SonicForgeError, ValueError):
    """A station-state request that cannot be done (queue, control, outputs)."""


class UnknownCommandError(StationStateError):
    """A control command that the streamer does not know, with the allowed ones."""


class QueueEntryNotFoundError(StationStateError, LookupError):
    """A queue entry id that is not in the upcoming queue."""
