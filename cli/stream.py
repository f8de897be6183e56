"""``sonicforge stream``: the streamer process (playout, HLS, MP3, RTMP,
visualizer feed). Heavy imports happen when the command runs."""

from __future__ import annotations

import argparse


def cmd_stream(args: argparse.Namespace) -> int:
    import logging

    from sonicforge.settings import get_settings
    from streaming.run import run_stream_process

    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serve = (args.host, args.port) if args.serve else None
    run_stream_process(settings, serve=serve, max_air_s=args.duration)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sp = sub.add_parser("stream", help="run the streamer: playout to HLS, MP3, RTMP and viz feed")
    sp.add_argument(
        "--serve", action="store_true", help="also serve /stream.mp3, /hls and /viz from here"
    )
    sp.add_argument("--host", default="127.0.0.1", help="address for --serve")
    sp.add_argument("--port", type=int, default=8010, help="port for --serve")
    sp.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds of air"
    )
    sp.set_defaults(func=cmd_stream)
