"""``sonicforge`` — run the radio's data platform from a shell.

Commands import their heavy dependencies (Dagster, DuckDB, great-expectations)
only when they run, so ``sonicforge --help`` stays instant.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sonicforge.errors import SonicForgeError

if TYPE_CHECKING:
    from sonicforge.lakehouse import Lakehouse


class CliError(SonicForgeError):
    """An error to print as one line, exit status 2."""


def _lakehouse() -> Lakehouse:
    from sonicforge.lakehouse import Lakehouse
    from sonicforge.settings import get_settings

    return Lakehouse.from_settings(get_settings())


def cmd_init(args: argparse.Namespace) -> int:
    from analytics.sql import SqlEngine, delta_extension_path
    from orchestration.launch import ensure_dagster_home
    from sonicforge.settings import get_settings

    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    lh = _lakehouse()
    names = lh.ensure_all()
    home = ensure_dagster_home(settings)
    engine = SqlEngine(lh, database=settings.resolved_duckdb_path)
    engine.close()
    print(f"lakehouse: {lh.root_uri} (tables: {', '.join(names)})")
    print(f"dagster home: {home}")
    print(f"duckdb file: {settings.resolved_duckdb_path}")
    ext = delta_extension_path()
    if ext is not None:
        # A plain DuckDB 1.4.4 shell cannot download the extension offline.
        print(f"in a duckdb shell, first run: LOAD '{ext}';")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    import logging

    from pydantic import ValidationError

    from models.errors import ModelsError
    from models.pipeline import plan_specs
    from orchestration.config import GenerationConfig
    from orchestration.environment import resources_for

    try:
        config = GenerationConfig(
            genres=args.genre or ["house"],
            count=args.count,
            duration_s=args.duration,
            seed=args.seed,
            backend=args.backend,
            bpm=args.bpm,
            prompt=args.prompt,
            request_id=args.request_id,
            commercial_only=args.commercial_only,
            license_policy=args.license_policy,
        )
    except ValidationError as exc:
        raise CliError(_validation_message(exc)) from None
    try:
        # Validate before Dagster starts, so a typo costs a second, not a run,
        # against the backend the run will use: the one named, else the
        # generator resource's choice (the MLflow alias's target, or settings).
        logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store set-up notes
        generator = resources_for()["generator"]
        backend = generator.choose(config.backend, overrides=config.sampling()).backend
        specs = backend.validate(
            plan_specs(config.genres, config.count, bpm=config.bpm), duration_s=config.duration_s
        )
    except (ModelsError, ValueError) as exc:
        raise CliError(str(exc)) from None
    config = config.model_copy(update={"genres": list(dict.fromkeys(s.genre for s in specs))})

    from orchestration.launch import launch_generation

    lh = _lakehouse()
    lh.ensure_all()
    print(
        f"generating {config.count} track(s) of {', '.join(config.genres)}, "
        f"{config.duration_s:g} s each, backend {backend.name} ...",
        flush=True,
    )
    result = launch_generation(config, batch_id=args.batch_id)
    _sync_duckdb(lh)
    status = "succeeded" if result.success else "FAILED"
    print(f"batch {result.batch_id}: run {result.run_id} {status}")
    if result.failed_steps:
        print("failed steps: " + ", ".join(result.failed_steps))
    if result.failed_checks:
        print("failed checks: " + ", ".join(result.failed_checks))
    from analytics.sql import SqlEngine, render

    engine = SqlEngine(lh)
    table = engine.query(
        "select t.track_id, t.genre, round(t.bpm, 1) as bpm, t.musical_key, "
        "round(t.duration_s, 1) as duration_s, round(s.quality_score, 1) as quality, s.passed, "
        "round(m.lufs_after, 2) as lufs, round(m.true_peak_after, 2) as dbtp, "
        "r.track_id is not null as on_air "
        "from tracks t left join track_scores s using (track_id) "
        "left join mastered_tracks m using (track_id) left join rotation r using (track_id) "
        "where t.batch_id = ? order by t.track_id",
        [result.batch_id],
    )
    sys.stdout.write(render(table, "table").decode())
    return 0 if result.success else 1


def _sync_duckdb(lh: Lakehouse) -> None:
    """Refresh the analysts' DuckDB file so its views cover every table."""
    import duckdb

    from analytics.sql import SqlEngine
    from sonicforge.settings import get_settings

    # Another process may hold the file open; its views stay valid then.
    with contextlib.suppress(duckdb.IOException):
        SqlEngine(lh, database=get_settings().resolved_duckdb_path).close()


def cmd_sql(args: argparse.Namespace) -> int:
    from analytics.sql import FORMATS, SqlEngine, SqlError, format_grid, render

    engine = SqlEngine(_lakehouse())
    if not args.query:
        import pyarrow as pa

        counts = engine.table_counts()
        if not counts:
            print("no tables yet: run `sonicforge init` or `sonicforge generate`")
            return 0
        sys.stdout.write(
            format_grid(pa.table({"table": [c[0] for c in counts], "rows": [c[1] for c in counts]}))
        )
        return 0
    try:
        table = engine.query(args.query)
    except SqlError as exc:
        raise CliError(str(exc)) from None
    fmt = args.format or ("table" if not args.output else Path(args.output).suffix.lstrip("."))
    if fmt not in FORMATS:
        raise CliError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    if fmt == "parquet" and not args.output:
        raise CliError("--format parquet needs --output FILE (parquet is binary)")
    data = render(table, fmt, max_rows=args.max_rows)  # type: ignore[arg-type]
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"wrote {table.num_rows} rows to {args.output}")
    else:
        sys.stdout.write(data.decode())
    return 0


def _validation_message(exc: object) -> str:
    errors = exc.errors()  # type: ignore[attr-defined]
    parts = []
    for e in errors:
        field = ".".join(str(p) for p in e["loc"]) or "value"
        parts.append(f"{field}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sonicforge", description="SonicForge AI music radio.")
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("init", help="create the lakehouse tables, Dagster home and DuckDB file")
    sp.set_defaults(func=cmd_init)

    sp = sub.add_parser("generate", help="generate, score, master and rotate a batch via Dagster")
    sp.add_argument("--genre", action="append", help="genre (repeatable); default house")
    sp.add_argument("--count", type=int, default=4, help="tracks in the batch (1-64)")
    sp.add_argument("--duration", type=float, default=180.0, help="seconds per track (10-600)")
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--bpm", type=float, default=None)
    sp.add_argument("--backend", default=None, help="generation backend (default: settings)")
    sp.add_argument("--prompt", default=None, help="prompt text for model backends")
    sp.add_argument(
        "--batch-id",
        default=None,
        help="partition key of the batch (the API picks one to find its run)",
    )
    sp.add_argument("--request-id", default=None, help="the listener request this batch serves")
    sp.add_argument(
        "--commercial-only",
        action="store_true",
        help="sold work: only a generator whose license allows commercial use",
    )
    sp.add_argument(
        "--license-policy",
        choices=["fallback", "refuse"],
        default="fallback",
        help="with --commercial-only and a non-commercial generator: use a commercial one, or fail",
    )
    sp.set_defaults(func=cmd_generate)

    sp = sub.add_parser("sql", help="query the lakehouse with DuckDB SQL; no query lists tables")
    sp.add_argument("query", nargs="?", default=None)
    sp.add_argument("--format", choices=["table", "csv", "json", "parquet"], default=None)
    sp.add_argument("--output", "-o", default=None, help="write the result to FILE")
    sp.add_argument("--max-rows", type=int, default=100, help="rows shown in table format")
    sp.set_defaults(func=cmd_sql)

    from cli.models import add_parser as add_models_parser

    add_models_parser(sub)

    from cli.serve import add_parser as add_serve_parser

    add_serve_parser(sub)

    from cli.stream import add_parser as add_stream_parser

    add_stream_parser(sub)

    from cli.inspect import add_parser as add_inspect_parser

    add_inspect_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SonicForgeError as exc:  # CliError, ModelsError and the rest derive from it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
