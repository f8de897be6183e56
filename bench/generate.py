"""Generation speed of one backend and model.

    .venv/bin/python bench/generate.py --backend musicgen --random-weights small \\
        --device cpu --batch 1 --duration 2
    .venv/bin/python bench/generate.py --backend musicgen --model facebook/musicgen-medium \\
        --device cuda --batch 8 --duration 30

Prints seconds of audio per second of wall time, time to first audio (the
first model window of the batch is decoded), peak memory (process RSS, and
GPU memory on CUDA) and the load time, and writes them as JSON to
``var/bench/generate-<backend>.json`` for the API to show. With
``--random-weights small|medium|large`` the published MusicGen architecture
is built in code with random weights: speed and memory are those of the real
model (the audio is noise), and nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GENRES = ["house", "techno", "trance", "drum_and_bass", "lofi_hip_hop", "ambient"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _build_backend(args: argparse.Namespace) -> tuple[Any, str, float, int | None]:
    """The backend, the model label, load seconds and the parameter count."""
    from models.generation.registry import create_backend

    started = time.perf_counter()
    if args.backend != "musicgen":
        options: dict[str, Any] = {}
        if args.backend == "audiocraft":
            options = {"device": args.device, **({"model": args.model} if args.model else {})}
        backend = create_backend(args.backend, **options)
        return backend, args.model or backend.model_name, time.perf_counter() - started, None

    from models.generation.musicgen import (
        MusicGenBackend,
        prepare_model,
        select_device,
        select_dtype,
    )

    sampling = {
        "guidance_scale": args.guidance, "window_s": args.window, "context_s": args.context,
        "crossfade_s": min(0.5, args.context), "batch_size": args.batch,
    }  # fmt: skip
    if args.random_weights:
        from models.generation.musicgen_configs import build_random_model

        device = select_device(args.device)
        dtype = select_dtype(args.dtype, device)
        model, processor = build_random_model(args.random_weights)
        model = prepare_model(model, device=device, dtype=dtype)
        label = f"random-weights:musicgen-{args.random_weights}"
        backend = MusicGenBackend.from_loaded(
            model, processor, model_name=label, model_version="random", **sampling
        )
    else:
        backend = MusicGenBackend(
            model=args.model, device=args.device, dtype=args.dtype, **sampling
        )
        model, _ = backend.loaded()
        label = backend.model_name
    params = sum(p.numel() for p in model.parameters())
    return backend, label, time.perf_counter() - started, params


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from models.generation.base import TrackSpec

    backend, label, load_s, params = _build_backend(args)
    specs = [TrackSpec(genre=GENRES[i % len(GENRES)]) for i in range(args.batch)]
    cuda = False
    if args.backend == "musicgen":
        import torch

        cuda = backend.device == "cuda"
        if args.warmup:
            # Lazy imports and kernel selection happen on the first call;
            # a tenth of a second of audio keeps them out of the figures.
            backend.generate(specs[:1], duration_s=0.1, seed=0)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
    first_audio: list[float] = []
    windows = 0

    def on_window(_window: Any, _audio: Any) -> None:
        nonlocal windows
        windows += 1
        if not first_audio:
            first_audio.append(time.perf_counter())

    if hasattr(backend, "on_window"):
        backend.on_window = on_window
    started = time.perf_counter()
    tracks = backend.generate(specs, duration_s=args.duration, seed=args.seed)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    audio_s = sum(t.duration_s for t in tracks)
    figures: dict[str, Any] = {
        "batch": args.batch,
        "duration_s": args.duration,
        "audio_seconds": round(audio_s, 3),
        "wall_s": round(wall, 3),
        "audio_seconds_per_wall_second": round(audio_s / wall, 4),
        "time_to_first_audio_s": round(
            (first_audio[0] if first_audio else started + wall) - started, 3
        ),
        "windows": windows or None,
        "load_s": round(load_s, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_gpu_mb": None,
        "parameters": params,
        "cpu_threads": _threads(),
    }
    if args.backend == "musicgen":
        figures.update(
            {"dtype": backend.dtype, "guidance_scale": args.guidance, "window_s": args.window}
        )
        if cuda:
            figures["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            figures["gpu"] = torch.cuda.get_device_name()
    device = _device(args, backend)
    return {
        "backend": args.backend,
        "model": label,
        "device": device,
        "weights": _weights(args),
        "figures": figures,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--backend", default="musicgen", choices=["musicgen", "audiocraft", "procedural"]
    )
    p.add_argument(
        "--model", default=None, help="a hub id (e.g. facebook/musicgen-small) or a local directory"
    )
    p.add_argument("--random-weights", choices=["small", "medium", "large", "tiny"], default=None,
                   help="build this published architecture with random weights instead of loading")  # fmt: skip
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    p.add_argument("--batch", type=int, default=1, help="prompts generated together")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of audio per track")
    p.add_argument("--window", type=float, default=30.0, help="model window in seconds")
    p.add_argument(
        "--context", type=float, default=10.0, help="context carried into each next window"
    )
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    p.add_argument("--no-warmup", dest="warmup", action="store_false")
    p.add_argument(
        "--output", default=None, help="JSON file (default var/bench/generate-<backend>.json)"
    )
    args = p.parse_args(argv)
    if args.model and args.random_weights:
        p.error("give --model or --random-weights, not both")
    if args.random_weights and args.backend != "musicgen":
        p.error("--random-weights builds MusicGen: it needs --backend musicgen")
    if args.backend == "musicgen" and not (args.model or args.random_weights):
        p.error("musicgen needs --model PATH_OR_ID or --random-weights small|medium|large")
    if args.batch < 1 or args.duration <= 0:
        p.error("--batch must be >= 1 and --duration > 0")

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    result = measure(args)
    f = result["figures"]
    print(f"{result['backend']} {result['model']} ({result['weights']} weights) "
          f"on {result['device']} ({f.get('dtype', '-')}), "
          f"batch {f['batch']} x {f['duration_s']:g} s")  # fmt: skip
    print(f"  audio seconds per wall second  {f['audio_seconds_per_wall_second']:.4f}  "
          f"({f['audio_seconds']:g} s of audio in {f['wall_s']:.2f} s)")  # fmt: skip
    print(f"  time to first audio            {f['time_to_first_audio_s']:.2f} s")
    print(f"  peak RAM (RSS)                 {f['peak_rss_mb']:.0f} MiB")
    print(
        f"  peak GPU memory                {'-' if f['peak_gpu_mb'] is None else format(f['peak_gpu_mb'], '.0f') + ' MiB'}"
    )
    print(
        f"  load / build                   {f['load_s']:.2f} s"
        + (f", {f['parameters'] / 1e6:.0f}M parameters" if f["parameters"] else "")
    )
    out = (
        Path(args.output) if args.output else _var_dir() / "bench" / f"generate-{args.backend}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  written to {out}")
    return 0


def _device(args: argparse.Namespace, backend: Any) -> str:
    """The device the figures were measured on, as resolved (never "auto")."""
    if args.backend == "musicgen":
        return str(backend.device)
    if args.backend == "audiocraft":
        from models.generation.musicgen import select_device

        return str(select_device(backend.requested_device))
    return "cpu"


def _weights(args: argparse.Namespace) -> str:
    """What the model's weights were: real (loaded), random (built in code) or
    none (a backend without a model)."""
    if args.random_weights:
        return "random"
    return "none" if args.backend == "procedural" else "real"


def _threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return int(torch.get_num_threads())


def _var_dir() -> Path:
    from sonicforge.settings import get_settings

    return get_settings().var_dir


if __name__ == "__main__":
    raise SystemExit(main())
