"""The picture for video platforms: spectrum bars under the now-playing
title and artist. Drawn with numpy slices on a cached background; text is
rendered by Pillow once per track, not once per frame."""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BACKGROUND_TOP = np.array([12, 14, 28], np.float32)
BACKGROUND_BOTTOM = np.array([34, 18, 52], np.float32)


def _palette(bands: int) -> np.ndarray:
    """One colour per bar, from teal through violet to pink."""
    return np.array(
        [
            [int(255 * c) for c in colorsys.hsv_to_rgb(0.5 + 0.45 * i / bands, 0.7, 1.0)]
            for i in range(bands)
        ],
        np.uint8,
    )


class Visualizer:
    """Renders ``(height, width, 3)`` uint8 RGB frames."""

    def __init__(self, width: int, height: int, *, bands: int = 32, decay: float = 0.82) -> None:
        self.w, self.h, self.bands, self.decay = width, height, bands, decay
        ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        bg = BACKGROUND_TOP * (1 - ramp) + BACKGROUND_BOTTOM * ramp
        self._bg = np.broadcast_to(bg, (height, width, 3)).astype(np.uint8)
        self._base = self._bg.copy()
        self._colors = _palette(bands)
        self._levels = np.zeros(bands, np.float32)
        self._text: tuple[str, str] | None = None
        margin = width // 10
        slot = (width - 2 * margin) / bands
        self._x0 = [int(margin + i * slot) for i in range(bands)]
        self._bar_w = max(1, int(slot * 0.72))
        self._floor = int(height * 0.9)
        self._max_h = int(height * 0.55)
        self._fonts = (
            ImageFont.load_default(size=max(12, height // 14)),
            ImageFont.load_default(size=max(10, height // 24)),
        )

    def _draw_text(self, title: str, artist: str) -> None:
        image = Image.fromarray(self._bg.copy())
        draw = ImageDraw.Draw(image)
        x, y = self.w // 10, self.h // 12
        draw.text((x, y), title, font=self._fonts[0], fill=(240, 240, 250))
        draw.text((x, y + int(self.h / 11)), artist, font=self._fonts[1], fill=(170, 170, 200))
        self._base = np.asarray(image, np.uint8)
        self._text = (title, artist)

    def render(self, levels: list[int] | np.ndarray, *, title: str, artist: str) -> np.ndarray:
        """A frame for band ``levels`` (0–255); bars fall back smoothly."""
        if self._text != (title, artist):
            self._draw_text(title, artist)
        new = np.asarray(levels, np.float32)[: self.bands] / 255.0
        self._levels = np.maximum(new, self._levels * self.decay)
        frame = self._base.copy()
        heights = (self._levels * self._max_h).astype(int)
        for i, bar_h in enumerate(heights):
            if bar_h > 0:
                x = self._x0[i]
                frame[self._floor - bar_h : self._floor, x : x + self._bar_w] = self._colors[i]
        return frame
