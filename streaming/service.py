"""Wire a streamer from settings: lakehouse, station state, outputs.

``sonicforge stream`` calls ``build_streamer(get_settings()).run()``; tests
pass their own lakehouse, station, clock and output list.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Literal

from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import Settings
from sonicforge.station import StationState, station_state_from_url
from streaming.catalog import Catalog
from streaming.clock import Clock, RealClock
from streaming.outputs.chunks import resolve_stream_dir
from streaming.outputs.hls import HlsOutput
from streaming.outputs.mp3 import Mp3Output
from streaming.outputs.viz import VizOutput
from streaming.playout import Playout
from streaming.plays import PlayRecorder
from streaming.scheduler import Scheduler
from streaming.streamer import OutputSpec, Streamer

log = logging.getLogger(__name__)

OutputName = Literal["hls", "mp3", "viz", "rtmp"]
ALL_OUTPUTS: tuple[OutputName, ...] = ("hls", "mp3", "viz", "rtmp")


def output_specs(
    settings: Settings,
    *,
    outputs: tuple[OutputName, ...] = ALL_OUTPUTS,
    station: StationState | None = None,
) -> list[OutputSpec]:
    root = resolve_stream_dir(settings)
    sr = settings.stream_sample_rate
    specs: list[OutputSpec] = []
    if "hls" in outputs:
        specs.append(
            OutputSpec(
                "hls",
                lambda: HlsOutput(
                    root / "hls",
                    bitrates_kbps=list(settings.stream_hls_bitrates_kbps),
                    sample_rate=sr,
                    segment_s=settings.stream_hls_segment_s,
                    window=settings.stream_hls_window,
                    aac_coder=settings.stream_aac_coder,
                ),
            )
        )
    if "mp3" in outputs:
        specs.append(
            OutputSpec(
                "mp3",
                lambda: Mp3Output(
                    root / "mp3", sample_rate=sr, bitrate_kbps=settings.stream_mp3_bitrate_kbps
                ),
            )
        )
    if "viz" in outputs:
        specs.append(
            OutputSpec(
                "viz", lambda: VizOutput(root / "viz", sample_rate=sr, fps=settings.stream_viz_fps)
            )
        )
    if "rtmp" in outputs:
        from streaming.outputs.rtmp import rtmp_output_specs

        specs.extend(rtmp_output_specs(settings, station=station))
    return specs


def build_streamer(
    settings: Settings,
    *,
    lakehouse: Lakehouse | None = None,
    station: StationState | None = None,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    outputs: list[OutputSpec] | None = None,
    backpressure: bool = False,
    channel: str = "main",
) -> Streamer:
    """A streamer for ``settings``; any part may be injected."""
    clock = clock or RealClock()
    lakehouse = lakehouse or Lakehouse.from_settings(settings)
    station = station or station_state_from_url(settings.redis_url)
    catalog = Catalog(lakehouse, clock=clock, fallback_size=settings.stream_fallback_size)
    scheduler = Scheduler(
        catalog,
        station,
        clock=clock,
        no_repeat_count=settings.stream_no_repeat_count,
        no_repeat_s=settings.stream_no_repeat_s,
        rng=rng,
    )
    try:
        since = clock.now() - timedelta(seconds=settings.stream_no_repeat_s)
        plays = lakehouse.read("plays", columns=["track_id", "started_at"]).to_pylist()
        scheduler.load_history(
            (p["track_id"], p["started_at"]) for p in plays if p["started_at"] >= since
        )
    except Exception as exc:  # no history is a reason to repeat, not to stay silent
        log.warning("could not read earlier plays: %s", exc)
    recorder = PlayRecorder(
        lakehouse, clock=clock, channel=channel, flush_s=settings.stream_plays_flush_s
    )
    store = lakehouse.audio
    if store is not None and "://" in store.root_uri:
        # Masters on object storage are read ahead of the air (streaming.prefetch).
        from streaming.prefetch import PrefetchingStore, upcoming_masters

        catalog.refresh()  # the first load here, not raced by the prefetch thread
        store = PrefetchingStore(store, lambda: upcoming_masters(catalog, station)).start()
    playout = Playout(
        scheduler=scheduler,
        station=station,
        recorder=recorder,
        clock=clock,
        store=store,
        sample_rate=settings.stream_sample_rate,
        target_lufs=settings.stream_target_lufs,
    )
    return Streamer(
        playout=playout,
        station=station,
        clock=clock,
        outputs=output_specs(settings, station=station) if outputs is None else outputs,
        recorder=recorder,
        sample_rate=settings.stream_sample_rate,
        crossfade_s=settings.stream_crossfade_s,
        skip_fade_s=settings.stream_skip_fade_s,
        request_segue_s=settings.stream_request_segue_s,
        backpressure=backpressure,
    )
