"""The MusicGen backend on a tiny random-weight model built offline, the
windowed continuation, device and precision choice, prompts, and the
audiocraft implementation where it imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.errors import InvalidSpecError, ModelUnavailableError
from models.generation.audiocraft_backend import AudiocraftBackend, audiocraft_import_error
from models.generation.base import TrackSpec
from models.generation.musicgen import (
    MusicGenBackend,
    locate_model,
    select_device,
    select_dtype,
)
from models.generation.musicgen_configs import save_random_model
from models.generation.prompts import PROMPT_TEMPLATE_VERSION, build_prompt, clean_request
from models.generation.registry import create_backend
from models.generation.windowing import (
    Window,
    crossfade_curves,
    generate_windowed,
    plan_windows,
    resample,
)

SR = 32000
HOP = 640  # samples per MusicGen frame at 32 kHz (50 Hz)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight MusicGen saved as save_pretrained saves real weights."""
    return save_random_model(tmp_path_factory.mktemp("musicgen") / "tiny", "tiny")


def _backend(path: Path, **options: Any) -> MusicGenBackend:
    opts: dict[str, Any] = {
        "model": str(path), "device": "cpu", "window_s": 1.0, "context_s": 0.4,
        "crossfade_s": 0.1, **options,
    }  # fmt: skip
    return MusicGenBackend(**opts)


# -- windowed continuation (pure) ---------------------------------------------


@pytest.mark.parametrize(
    ("total", "window", "context"),
    [
        (10, 50, 10),
        (50, 50, 10),
        (51, 50, 10),
        (900, 1500, 500),
        (9000, 1500, 500),
        (7, 3, 2),
        (5, 4, 0),
    ],
)
def test_windows_cover_the_track_and_fit_the_model(total: int, window: int, context: int) -> None:
    windows = plan_windows(total, window_frames=window, context_frames=context)
    assert sum(w.new_frames for w in windows) == total
    assert windows[0].context_frames == 0
    assert all(w.context_frames + w.new_frames <= window and w.new_frames > 0 for w in windows)
    assert all(
        w.context_frames == min(context, sum(x.new_frames for x in windows[: w.index]))
        for w in windows[1:]
    )


def test_a_context_as_long_as_the_window_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match=r"context of 50 frames must be in \[0, 49\]"):
        plan_windows(100, window_frames=50, context_frames=50)


def test_crossfade_curves_sum_to_one() -> None:
    fade_out, fade_in = crossfade_curves(257)
    np.testing.assert_allclose(fade_out + fade_in, 1.0, atol=1e-6)
    assert fade_in[0] < 0.01 and fade_in[-1] > 0.99 and np.all(np.diff(fade_in) > 0)


def _sine(start: int, n: int, freq: float = 220.0) -> np.ndarray:
    t = (start + np.arange(n)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, None, :]


def _continue_sine(rng: np.random.Generator) -> Any:
    """A stand-in model that continues a sine. Like a codec, it renders each
    window (context and new audio alike) slightly differently from the last:
    every other window is 3 % quieter and offset by 0.02, with a little noise."""
    produced = 0
    calls = 0

    def window(context: np.ndarray | None, new_frames: int) -> np.ndarray:
        nonlocal produced, calls
        ctx = 0 if context is None else context.shape[-1]
        odd = calls % 2
        out = _sine(produced - ctx, ctx + new_frames * HOP) * (1.0 - 0.03 * odd) + 0.02 * odd
        out += rng.normal(0, 1e-4, out.shape[-1]).astype(np.float32)
        produced += new_frames * HOP
        calls += 1
        return out

    return window


@pytest.mark.parametrize("crossfade", [SR // 10, SR // 100])
def test_windowed_continuation_joins_without_a_seam(crossfade: int) -> None:
    """The track is the right length, follows the ideal sine across every
    join, and the error never jumps at a join (a hard splice would)."""
    seen: list[Window] = []
    total = 4 * 50 + 13  # 4.26 s: several windows and a short last one
    kwargs: dict[str, Any] = {
        "total_frames": total,
        "window_frames": 100,
        "context_frames": 30,
        "hop": HOP,
    }
    audio = generate_windowed(
        _continue_sine(np.random.default_rng(0)), crossfade_samples=crossfade,
        on_window=lambda w, a: seen.append(w), **kwargs,
    )  # fmt: skip
    ideal = _sine(0, total * HOP)
    assert audio.shape == ideal.shape
    assert [w.index for w in seen] == list(
        range(len(plan_windows(total, window_frames=100, context_frames=30)))
    )
    assert np.max(np.abs(audio - ideal)) < 0.04
    assert np.max(np.abs(np.diff(audio - ideal))) < 0.002
    spliced = generate_windowed(
        _continue_sine(np.random.default_rng(0)), crossfade_samples=0, **kwargs
    )
    assert np.max(np.abs(np.diff(spliced - ideal))) > 0.015  # what the crossfade removes


def test_resampling_to_44k1_keeps_pitch_and_length() -> None:
    x = _sine(0, SR, freq=1000.0)[0]
    y = resample(x, SR, 44100)
    assert y.shape == (1, 44100) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y[0]))
    assert abs(np.argmax(spectrum) * 44100 / y.shape[-1] - 1000.0) < 2.0


# -- device, precision, prompts -----------------------------------------------


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_auto_device_prefers_cuda_then_mps_then_cpu(cuda: bool, mps: bool, expected: str) -> None:
    assert select_device("auto", cuda_available=cuda, mps_available=mps) == expected


def test_an_absent_device_is_refused_with_what_exists() -> None:
    with pytest.raises(ModelUnavailableError, match=r"device 'cuda' is not available.*auto, cpu"):
        select_device("cuda", cuda_available=False, mps_available=False)
    with pytest.raises(InvalidSpecError, match="allowed: auto, cuda, mps, cpu"):
        select_device("tpu")


@pytest.mark.parametrize(
    ("device", "bf16", "expected"),
    [
        ("cuda", True, "bfloat16"),
        ("cuda", False, "float16"),
        ("mps", None, "float16"),
        ("cpu", None, "float32"),
    ],
)
def test_half_precision_on_gpus_only(device: str, bf16: bool | None, expected: str) -> None:
    assert select_dtype("auto", device, bf16_supported=bf16) == expected


def test_prompt_template_names_genre_tempo_key_and_instruments() -> None:
    p = build_prompt(TrackSpec("lofi", bpm=82), seed=1)
    assert p.version == PROMPT_TEMPLATE_VERSION and p.genre == "lofi_hip_hop"
    assert p.text.startswith("lo-fi hip hop, 82 bpm, ") and "Rhodes" in p.text and p.bpm == 82.0
    assert build_prompt(TrackSpec("ambient"), seed=3).bpm == 0.0  # beatless: no tempo asked
    assert build_prompt(TrackSpec("house"), seed=5) == build_prompt(TrackSpec("house"), seed=5)


def test_a_listener_request_leads_the_prompt_cleaned() -> None:
    p = build_prompt(TrackSpec("techno", prompt="  for my\x00 night\n drive " + "x" * 300), seed=0)
    assert p.text.startswith("for my night drive") and ", techno, " in p.text
    assert len(clean_request("word " * 100)) <= 200


def test_unknown_genres_and_bad_values_list_what_is_allowed(tiny_dir: Path) -> None:
    backend = _backend(tiny_dir)
    with pytest.raises(
        InvalidSpecError, match="unknown genre 'polka'; allowed: ambient, drum_and_bass"
    ):
        backend.validate([TrackSpec("polka")], duration_s=10)
    with pytest.raises(
        InvalidSpecError, match=r"'bpm' is out of range \[120, 128\] for genre 'house'"
    ):
        backend.validate([TrackSpec("house", bpm=140)], duration_s=10)
    with pytest.raises(InvalidSpecError, match=r"\[60, 90\] for genre 'ambient' \(beatless"):
        backend.validate([TrackSpec("ambient", bpm=120)], duration_s=10)
    # Beatless ambient takes no pulse (0 or none) or one in its range.
    assert [
        p.bpm for p in (build_prompt(TrackSpec("ambient", bpm=b), seed=1) for b in (0, 72))
    ] == [
        0.0,
        72.0,
    ]
    with pytest.raises(InvalidSpecError, match=r"'duration_s' is out of range \(0, 600\]"):
        backend.validate([TrackSpec("house")], duration_s=601)
    with pytest.raises(InvalidSpecError, match="'crossfade_s' must be in"):
        _backend(tiny_dir, crossfade_s=1.0)


# -- the tiny model through the real loading path -----------------------------


def test_tiny_model_generates_a_batch_at_44k1_stereo(tiny_dir: Path) -> None:
    backend = _backend(tiny_dir)
    tracks = backend.generate(
        [TrackSpec("house"), TrackSpec("dnb", prompt="rainy")], duration_s=2.3, seed=11
    )
    assert backend.model_name == str(tiny_dir) and backend.model_version.startswith("local-")
    assert [t.genre for t in tracks] == ["house", "drum_and_bass"] and [t.seed for t in tracks] == [
        11,
        12,
    ]
    for t in tracks:
        assert t.sample_rate == 44100 and t.audio.shape == (2, round(2.3 * 44100))
        assert (
            t.audio.dtype == np.float32 and np.isfinite(t.audio).all() and np.abs(t.audio).max() > 0
        )
        assert t.metadata["prompt_version"] == PROMPT_TEMPLATE_VERSION and t.prompt
    assert not np.array_equal(tracks[0].audio, tracks[1].audio)


def test_seeds_are_honoured(tiny_dir: Path) -> None:
    backend = _backend(tiny_dir)
    spec = [TrackSpec("techno", bpm=130)]
    a, b, c = (backend.generate(spec, duration_s=1.0, seed=s)[0].audio for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_long_tracks_are_continued_window_by_window(tiny_dir: Path) -> None:
    seen: list[tuple[int, int]] = []
    backend = _backend(
        tiny_dir,
        output_sample_rate=None,
        channels=1,
        on_window=lambda w, a: seen.append((w.context_frames, a.shape[-1])),
    )
    (track,) = backend.generate([TrackSpec("trance")], duration_s=3.3, seed=0)
    assert track.sample_rate == SR and track.audio.shape == (1, round(3.3 * SR))
    plan = plan_windows(round(3.3 * 50), window_frames=50, context_frames=20)
    assert [c for c, _ in seen] == [w.context_frames for w in plan] and len(plan) > 1
    # The audio grows by exactly the new frames of each window.
    assert [n for _, n in seen] == list(np.cumsum([w.new_frames * HOP for w in plan]))


def test_weights_are_found_in_the_hub_cache_layout(tiny_dir: Path, tmp_path: Path) -> None:
    """A hub-cache snapshot (as `models pull` leaves it) loads offline and
    records the snapshot's commit as the model revision."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--facebook--musicgen-small"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in tiny_dir.iterdir():
        (snapshot / f.name).symlink_to(f)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    backend = MusicGenBackend(
        model="musicgen-small",
        cache_dir=tmp_path / "hub",
        device="cpu",
        window_s=1.0,
        context_s=0.2,
        crossfade_s=0.1,
    )
    assert (backend.model_name, backend.model_version) == ("facebook/musicgen-small", commit)
    (track,) = backend.generate([TrackSpec("house")], duration_s=0.5, seed=1)
    assert track.audio.shape == (2, 22050)


def test_missing_weights_say_what_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError) as err:
        MusicGenBackend(model="facebook/musicgen-medium", cache_dir=tmp_path / "hub").generate(
            [TrackSpec("house")], duration_s=10, seed=0
        )
    msg = str(err.value)
    assert "'facebook/musicgen-medium' is not available" in msg
    assert str(tmp_path / "hub" / "models--facebook--musicgen-medium") in msg
    assert (
        "sonicforge models pull facebook/musicgen-medium" in msg
        and "SONICFORGE_MUSICGEN_PATH" in msg
    )


def test_settings_directory_provides_the_model(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "musicgen-large").symlink_to(tiny_dir, target_is_directory=True)
    src = locate_model(
        "facebook/musicgen-large", musicgen_path=models_dir, cache_dir=tmp_path / "hub"
    )
    assert src.location == str(models_dir / "musicgen-large") and src.local_files_only
    # SONICFORGE_MUSICGEN_PATH pointing at a model directory is the default model.
    from sonicforge.settings import get_settings

    monkeypatch.setenv("SONICFORGE_MUSICGEN_PATH", str(tiny_dir))
    get_settings.cache_clear()
    backend = create_backend("musicgen", device="cpu")
    assert backend.model_name == str(tiny_dir) and backend.supports_batching


# -- audiocraft ---------------------------------------------------------------

AUDIOCRAFT_ERROR = audiocraft_import_error()


@pytest.mark.skipif(AUDIOCRAFT_ERROR is None, reason="audiocraft imports here")
def test_audiocraft_unavailable_says_why() -> None:
    with pytest.raises(ModelUnavailableError) as err:
        create_backend("audiocraft")
    msg = str(err.value)
    assert "importing audiocraft failed" in msg and "torch==2.1.0" in msg and "'musicgen'" in msg


@pytest.mark.skipif(
    AUDIOCRAFT_ERROR is not None,
    reason=f"audiocraft does not import here ({AUDIOCRAFT_ERROR}); its 1.3.0 release pins "
    "torch==2.1.0 beside this project's torch 2.13",
)
def test_audiocraft_missing_weights_name_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    backend = create_backend("audiocraft", model="musicgen-small", device="cpu")
    with pytest.raises(ModelUnavailableError, match="facebook/musicgen-small"):
        backend.generate([TrackSpec("house")], duration_s=1.0, seed=0)


class _FakeAudiocraft:
    """audiocraft.models.MusicGen's interface: set_generation_params, generate, sample_rate."""

    sample_rate = 32000

    def __init__(self, channels: int = 1) -> None:
        self.channels = channels
        self.params: dict[str, Any] = {}

    def set_generation_params(self, **params: Any) -> None:
        self.params = params

    def generate(self, descriptions: list[str], progress: bool = False) -> Any:
        import torch

        n = int(self.params["duration"] * self.sample_rate)
        return torch.rand(len(descriptions), self.channels, n) - 0.5


def test_audiocraft_backend_maps_the_run_config() -> None:
    fake = _FakeAudiocraft()
    backend = AudiocraftBackend(
        guidance_scale=4.0, top_k=100, window_s=30, context_s=12, _model=fake
    )
    tracks = backend.generate([TrackSpec("house"), TrackSpec("ambient")], duration_s=1.5, seed=3)
    assert fake.params == {
        "use_sampling": True, "top_k": 100, "temperature": 1.0, "duration": 1.5,
        "cfg_coef": 4.0, "extend_stride": 18.0,
    }  # fmt: skip
    assert [t.audio.shape for t in tracks] == [(2, round(1.5 * 44100))] * 2
    assert tracks[1].seed == 4 and tracks[0].metadata["prompt_version"] == PROMPT_TEMPLATE_VERSION


@pytest.mark.parametrize(("model_channels", "channels"), [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_audiocraft_output_has_the_channels_asked_for(model_channels: int, channels: int) -> None:
    backend = AudiocraftBackend(
        channels=channels, output_sample_rate=None, _model=_FakeAudiocraft(model_channels)
    )
    (track,) = backend.generate([TrackSpec("techno")], duration_s=0.5, seed=0)
    assert track.sample_rate == 32000 and track.audio.shape == (channels, 16000)
    assert track.audio.dtype == np.float32
