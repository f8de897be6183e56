"""RTMP targets: platform presets, targets from settings, and redaction.

A stream key is a password: it lives in the target's URL and nowhere else.
Everything logged or reported goes through ``RtmpTarget.safe_url`` or
``redact``, including FFmpeg's error messages, which quote the URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sonicforge.settings import Settings
from streaming.errors import StreamConfigError

# Ingest endpoints the platforms document for encoder software.
PRESETS: dict[str, str] = {
    "youtube": "rtmp://a.rtmp.youtube.com/live2",
    "twitch": "rtmp://live.twitch.tv/app",
    "kick": "rtmps://fa723fc1b171.global-contribute.live-video.net/app",
}


@dataclass(frozen=True)
class RtmpTarget:
    """One push destination; ``repr`` never shows the key."""

    name: str
    url: str = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def safe_url(self) -> str:
        return redact(self.url, self.secrets)


def redact(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    return text


def target(
    *,
    preset: str | None = None,
    key: str | None = None,
    url: str | None = None,
    name: str | None = None,
) -> RtmpTarget:
    """A target from a preset and key, or from a full URL (whose last path
    part is taken as the key)."""
    if preset is not None:
        if preset not in PRESETS:
            raise StreamConfigError(
                f"unknown RTMP preset {preset!r}; allowed presets: {', '.join(PRESETS)}"
            )
        if not key:
            raise StreamConfigError(f"the {preset} RTMP target needs a stream key")
        return RtmpTarget(name or preset, f"{PRESETS[preset]}/{key}", (key,))
    if not url or not url.startswith(("rtmp://", "rtmps://")):
        raise StreamConfigError(
            f"an RTMP target needs a preset ({', '.join(PRESETS)}) and key, "
            "or a url starting with rtmp:// or rtmps://"
        )
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return RtmpTarget(name or "custom", url, (tail,) if tail else ())


def targets_from_settings(settings: Settings) -> list[RtmpTarget]:
    """Per-preset keys plus the JSON list in ``SONICFORGE_STREAM_RTMP_TARGETS``."""
    out = []
    for preset, secret in (
        ("youtube", settings.stream_youtube_key),
        ("twitch", settings.stream_twitch_key),
        ("kick", settings.stream_kick_key),
    ):
        if secret is not None and secret.get_secret_value():
            out.append(target(preset=preset, key=secret.get_secret_value()))
    if settings.stream_rtmp_targets is not None:
        raw = settings.stream_rtmp_targets.get_secret_value().strip()
        try:
            items = json.loads(raw) if raw else []
        except json.JSONDecodeError as exc:
            # The message must not echo the value: it holds keys.
            raise StreamConfigError(
                f"SONICFORGE_STREAM_RTMP_TARGETS is not valid JSON (line {exc.lineno}, "
                f"column {exc.colno}); expected a list of objects"
            ) from None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise StreamConfigError("SONICFORGE_STREAM_RTMP_TARGETS must be a JSON list of objects")
        allowed = {"preset", "key", "url", "name"}
        for item in items:
            extra = set(item) - allowed
            if extra:
                raise StreamConfigError(
                    f"unknown RTMP target fields {sorted(extra)}; allowed: {sorted(allowed)}"
                )
            out.append(target(**item))
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise StreamConfigError(f"RTMP target names must be unique, got {names}")
    return out


def video_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    if width % 2 or height % 2:
        raise StreamConfigError(f"video size {text!r} must have even width and height (yuv420p)")
    return width, height
