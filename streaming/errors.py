"""Exceptions of the streaming service."""

from __future__ import annotations

from sonicforge.errors import SonicForgeError


class StreamingError(SonicForgeError):
    """Base class for streaming errors; messages are meant for people."""


class TrackUnavailableError(StreamingError):
    """A master that cannot air: missing, unreadable or not decodable."""


class OutputError(StreamingError):
    """An output (encoder, segment writer, RTMP target) failed; it restarts."""


class StreamConfigError(StreamingError, ValueError):
    """A streaming setting that cannot work, with what is allowed."""
