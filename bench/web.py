"""The listener page in Debian's Chromium on loopback.

    .venv/bin/python bench/web.py [--rounds 5] [--cpu-s 10]

Starts the real stack (the API with the streamer inside, as ``make run``
without Redis; ``tests.web.stack``) and a headless Chromium (Playwright from
PyPI, ``/usr/bin/chromium``), and prints:

- navigation to audio playing: from the navigation's start to the first
  ``playing`` event with ``currentTime`` moving, the Play button clicked as
  soon as it is there; over HLS (hls.js, loaded on that click) and over the
  MP3 mount; a fresh browser context each round (no cache), and a warm one
  (cache and service worker). Target <= 3 s.
- largest contentful paint of the listener page, cold and warm. Target <= 1 s.
- the bytes each page sends, gzipped as the API sends them: JavaScript
  (first load, and the chunks loaded later, hls.js on Play), CSS, HTML.
  Listener JS target <= 150 kB.
- the browser's CPU (every Chromium process, from /proc) over ``--cpu-s``
  seconds: the page open and paused; playing with the visualizer; playing
  with the visualizer stopped; in % of one core. Target <= 15 % with the
  visualizer on.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import proctree  # noqa: E402
from tests.web.stack import CHROMIUM, CHROMIUM_ARGS, start_stack  # noqa: E402

WEB = ROOT / "serving" / "webui"
TICK = os.sysconf("SC_CLK_TCK")

# Marks navigation-relative times of the first audio and the LCP, before any page script runs.
PROBE = """
window.__bench = {lcp: null, audio: null};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.lcp = e.startTime;
}).observe({type: 'largest-contentful-paint', buffered: true});
document.addEventListener('timeupdate', (e) => {
  if (window.__bench.audio === null && e.target.currentTime > 0) window.__bench.audio = performance.now();
}, true);
"""


def gz(data: bytes) -> int:
    return len(gzip.compress(data, 9, mtime=0))


STATIC_IMPORT = re.compile(
    r'from\s*["\'`]\./([\w.-]+\.js)["\'`]|import\s*["\'`]\./([\w.-]+\.js)["\'`]'
)
DYNAMIC_IMPORT = re.compile(r'import\(\s*["\'`]\./([\w.-]+\.js)["\'`]\s*\)')


def page_bytes(html_name: str) -> dict[str, int]:
    """Gzipped bytes of one page: its HTML and CSS, the JS it loads first
    (the entry and its static imports) and later (dynamic imports: hls.js)."""
    html = (WEB / html_name).read_text()
    first = re.findall(r'(?:src|href)="/assets/([^"]+)"', html)
    css = {n for n in first if n.endswith(".css")}
    eager = {n for n in first if n.endswith(".js")}
    lazy: set[str] = set()
    queue = list(eager)
    while queue:
        code = (WEB / "assets" / queue.pop()).read_text()
        for m in STATIC_IMPORT.finditer(code):
            name = m.group(1) or m.group(2)
            if name not in eager:
                eager.add(name)
                queue.append(name)
        lazy |= set(DYNAMIC_IMPORT.findall(code))
    lazy -= eager

    def total(names: set[str]) -> int:
        return sum(gz((WEB / "assets" / n).read_bytes()) for n in names)

    return {
        "html": gz(html.encode()),
        "js_first": total(eager),
        "js_later": total(lazy),
        "css": total(css),
    }


def browser_cpu_s(root_pid: int) -> float:
    total = 0
    for proc in [proctree.read_proc(root_pid), *proctree.descendants(root_pid)]:
        if proc is None:
            continue
        try:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICK


def chromium_root(marker: str) -> int:
    for proc in proctree.all_procs():
        if marker in proc.cmdline and "--type=" not in proc.cmdline:
            return proc.pid
    raise RuntimeError("the Chromium browser process was not found")


def to_audio(page: Any, path: str) -> tuple[float, float]:
    """(ms from navigation to audio, ms LCP) for one load of ``path``."""
    page.goto(path)
    page.click("#play")
    page.wait_for_function("() => window.__bench.audio !== null", timeout=20_000)
    page.wait_for_function("() => window.__bench.lcp !== null")
    audio, lcp = page.evaluate("() => [window.__bench.audio, window.__bench.lcp]")
    return float(audio), float(lcp)


def cpu_percent(page: Any, root: int, seconds: float) -> float:
    before, t0 = browser_cpu_s(root), time.monotonic()
    page.wait_for_timeout(seconds * 1000)
    return 100.0 * (browser_cpu_s(root) - before) / (time.monotonic() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="cold loads per transport")
    parser.add_argument("--cpu-s", type=float, default=10.0, help="seconds per CPU sample")
    args = parser.parse_args()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    sizes = {name: page_bytes(f"{name}.html") for name in ("index", "embed", "console")}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        t0 = time.monotonic()
        stack = start_stack(Path(tmp))
        print(f"stack on air in {time.monotonic() - t0:.1f} s at {stack.url}", flush=True)
        marker = f"--bench-web-{os.getpid()}"
        results: dict[str, tuple[list[float], list[float]]] = {}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, marker])
                root = chromium_root(marker)
                blank_ctx = browser.new_context()
                blank = blank_ctx.new_page()
                blank.goto("about:blank")
                floor = cpu_percent(blank, root, args.cpu_s)  # the browser alone
                blank_ctx.close()
                for label, path in (("HLS (hls.js)", "/"), ("MP3 mount", "/?transport=mp3")):
                    audio, lcp = [], []
                    for _ in range(args.rounds):
                        ctx = browser.new_context(base_url=stack.url)
                        ctx.add_init_script(PROBE)
                        a, paint = to_audio(ctx.new_page(), path)
                        audio.append(a)
                        lcp.append(paint)
                        ctx.close()
                    results[label] = (audio, lcp)
                # Warm: the same context again (HTTP cache and the service worker's shell).
                ctx = browser.new_context(base_url=stack.url)
                ctx.add_init_script(PROBE)
                page = ctx.new_page()
                to_audio(page, "/")
                page.wait_for_function("() => navigator.serviceWorker.controller !== null || "
                                       "navigator.serviceWorker.ready.then(() => true)")  # fmt: skip
                warm_audio, warm_lcp = [], []
                for _ in range(args.rounds):
                    a, paint = to_audio(page, "/")
                    warm_audio.append(a)
                    warm_lcp.append(paint)
                results["HLS, warm"] = (warm_audio, warm_lcp)

                # CPU: paused page; playing with the visualizer; playing without it.
                page.click("#play")  # pause
                page.wait_for_function("() => window.sonicforge.player.state === 'paused'")
                page.wait_for_timeout(1000)
                idle = cpu_percent(page, root, args.cpu_s)
                page.click("#play")
                page.wait_for_function("() => window.sonicforge.visualizer.running")
                page.wait_for_timeout(2000)
                counts = "() => [window.sonicforge.visualizer.drawn, window.sonicforge.visualizer.skipped]"
                (frames0, skipped0), t_viz = page.evaluate(counts), time.monotonic()
                with_viz = cpu_percent(page, root, args.cpu_s)
                frames1, skipped1 = page.evaluate(counts)
                took = time.monotonic() - t_viz
                fps = (frames1 - frames0) / took
                painted = (frames1 - frames0 - (skipped1 - skipped0)) / took
                page.evaluate("() => window.sonicforge.visualizer.stop()")
                page.wait_for_timeout(1000)
                without_viz = cpu_percent(page, root, args.cpu_s)
                ctx.close()
                browser.close()
        finally:
            stack.stop()

    print("\nNavigation to audio and largest contentful paint (ms, headless Chromium, loopback)")
    print(
        f"{'load':<16}{'rounds':>7}{'audio p50':>11}{'audio max':>11}{'LCP p50':>10}{'LCP max':>10}"
    )
    for label, (audio, lcp) in results.items():
        print(
            f"{label:<16}{len(audio):>7}{statistics.median(audio):>11.0f}{max(audio):>11.0f}"
            f"{statistics.median(lcp):>10.0f}{max(lcp):>10.0f}"
        )
    worst_audio = max(max(a) for a, _ in results.values())
    worst_lcp = max(max(lcp) for _, lcp in results.values())
    print(f"target: audio <= 3000 ms ({'met' if worst_audio <= 3000 else 'MISSED'}, worst "
          f"{worst_audio:.0f}), LCP <= 1000 ms ({'met' if worst_lcp <= 1000 else 'MISSED'}, "
          f"worst {worst_lcp:.0f})")  # fmt: skip

    print("\nBytes sent, gzipped (level 9, as serving/web.py sends them)")
    print(f"{'page':<10}{'HTML':>8}{'JS first':>10}{'JS later':>10}{'JS all':>9}{'CSS':>8}")
    for name, s in sizes.items():
        js = s["js_first"] + s["js_later"]
        print(f"{name:<10}{s['html']:>8}{s['js_first']:>10}{s['js_later']:>10}{js:>9}{s['css']:>8}")
    listener_js = sizes["index"]["js_first"] + sizes["index"]["js_later"]
    print(f"target: listener JS <= 150 kB: {listener_js / 1000:.1f} kB "
          f"({'met' if listener_js <= 150_000 else 'MISSED'}); 'JS later' is hls.js, loaded on Play")  # fmt: skip

    print(f"\nBrowser CPU, every Chromium process, % of one core over {args.cpu_s:g} s")
    print(f"{'about:blank (the browser alone)':<34}{floor:>6.1f}")
    print(f"{'page open, paused':<34}{idle:>6.1f}")
    print(f"{'playing HLS + visualizer':<34}{with_viz:>6.1f}")
    print(f"{'playing HLS, visualizer stopped':<34}{without_viz:>6.1f}")
    print(f"visualizer: {fps:.0f} display frames a second, {painted:.0f} of them painted "
          "(the others would not have moved a bar by a pixel)")  # fmt: skip
    print(
        f"target: <= 15 % with the visualizer on ({'met' if with_viz <= 15 else 'MISSED'}); "
        f"the visualizer itself costs {with_viz - without_viz:+.1f} points"
    )


if __name__ == "__main__":
    main()
