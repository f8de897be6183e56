"""Draws the app's icons (PNG for the manifest and favicon, SVG for pages).

Run once when the mark changes: ``python web/scripts/icons.py``; the
results are committed under web/public/icons.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "public" / "icons"
BG, ACCENT, WAVE = (11, 16, 32), (125, 211, 252), (253, 224, 71)
BARS = [0.35, 0.6, 0.9, 0.7, 0.45, 0.8, 0.55]


def draw(size: int, *, maskable: bool) -> Image.Image:
    img = Image.new("RGB", (size, size), BG)
    d = ImageDraw.Draw(img)
    pad = size * (0.22 if maskable else 0.12)  # maskable: keep the mark in the safe zone
    if not maskable:
        d.rounded_rectangle([0, 0, size - 1, size - 1], radius=size * 0.2, fill=BG)
    inner = size - 2 * pad
    bar_w = inner / (len(BARS) * 1.6)
    for i, h in enumerate(BARS):
        x0 = pad + i * bar_w * 1.6 + bar_w * 0.3
        y1 = pad + inner
        y0 = y1 - h * inner
        d.rounded_rectangle(
            [x0, y0, x0 + bar_w, y1], radius=bar_w / 2, fill=ACCENT if i % 3 else WAVE
        )
    return img


def svg() -> str:
    bars = []
    for i, h in enumerate(BARS):
        x = 12 + i * 11.5 + 2
        y = 88 - h * 76
        color = "#7dd3fc" if i % 3 else "#fde047"
        bars.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="7" height="{h * 76:.1f}" rx="3.5" fill="{color}"/>'
        )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">'
        '<rect width="100" height="100" rx="20" fill="#0b1020"/>' + "".join(bars) + "</svg>\n"
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for size in (192, 512):
        draw(size, maskable=False).save(OUT / f"icon-{size}.png", optimize=True)
    draw(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)
    draw(64, maskable=False).save(OUT / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])
    (OUT / "icon.svg").write_text(svg())


if __name__ == "__main__":
    main()
