"""``sonicforge models``: model weights and the generator registry.

``models`` (or ``models list``) shows which MusicGen weights are on this
machine and the registered generator versions with their aliases;
``models pull NAME`` downloads weights into the Hugging Face cache;
``models register`` and ``models alias`` add a generator version and move
an alias (``production`` is what the station generates with).

Only argparse is imported at module level, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from models.errors import ModelsError


class ModelsCliError(ModelsError):
    """A one-line error for the CLI (``main`` prints it, exit status 2)."""


def _settings() -> Any:
    from sonicforge.settings import get_settings

    return get_settings()


def _tracking() -> Any:
    from orchestration.environment import mlflow_resource_for

    s = _settings()
    return mlflow_resource_for(s).tracking(model_name=s.generator_model_name)


def cmd_list(args: argparse.Namespace) -> int:
    from models.generation.audiocraft_backend import audiocraft_import_error
    from models.generation.musicgen import KNOWN_MODELS, describe_model_source, hub_cache_dir

    s = _settings()
    print(f"MusicGen weights (Hugging Face cache {hub_cache_dir()}; "
          f"SONICFORGE_MUSICGEN_PATH {s.musicgen_path or 'unset'}):")  # fmt: skip
    for model_id in KNOWN_MODELS.values():
        where = describe_model_source(model_id, musicgen_path=s.musicgen_path)
        print(f"  {model_id:<28} {where}")
    if s.musicgen_path and (s.musicgen_path / "config.json").is_file():
        print(f"  {s.musicgen_path!s:<28} local model directory (the default model)")
    reason = audiocraft_import_error()
    print(
        f"audiocraft backend: {'available' if reason is None else 'unavailable (' + reason + ')'}"
    )
    tracking = _tracking()
    versions = tracking.generator_versions()
    print(f"registered generator {tracking.model_name!r} ({tracking.tracking_uri}):")
    if not versions:
        print(f"  none yet: the first generation run registers {s.default_backend!r} as "
              f"{s.generator_alias!r}")  # fmt: skip
    for v in versions:
        aliases = ",".join(v["aliases"]) or "-"
        print(
            f"  v{v['version']:<4} {v['backend']:<11} aliases: {aliases:<20} options: {v['options']}"
        )
    if s.generator_source == "settings":
        print(
            f"note: SONICFORGE_GENERATOR_SOURCE=settings, runs use {s.default_backend!r}, not the alias"
        )
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from huggingface_hub import snapshot_download

    from models.generation.musicgen import canonical_model_id, hub_cache_dir

    model_id = canonical_model_id(args.name)
    # audiocraft's own weights sit in the same repos; skip them unless asked.
    ignore = None if args.audiocraft else ["state_dict.bin", "compression_state_dict.bin"]
    print(f"downloading {model_id} into {hub_cache_dir()} ...", flush=True)
    try:
        path = snapshot_download(model_id, revision=args.revision, ignore_patterns=ignore)
    except Exception as exc:  # network, auth, missing repo: all reported the same way
        raise ModelsCliError(
            f"could not download {model_id!r} from the Hugging Face Hub: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}. Without hub access, run "
            f"`sonicforge models pull {model_id}` on a machine with internet and copy "
            f"{hub_cache_dir() / ('models--' + model_id.replace('/', '--'))} into this machine's "
            "Hugging Face cache, or save the model with save_pretrained and set "
            "SONICFORGE_MUSICGEN_PATH to that directory"
        ) from None
    print(f"{model_id}: {path}")
    return 0


def _parse_option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ModelsCliError(f"option {text!r} is not KEY=VALUE (e.g. guidance_scale=3.5)")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # plain strings need no quotes: model=facebook/musicgen-small
    return key, value


def cmd_register(args: argparse.Namespace) -> int:
    from models.generation.registry import backend_names, create_backend
    from models.tracking import GeneratorConfig

    if args.backend not in backend_names():
        raise ModelsCliError(
            f"unknown backend {args.backend!r}; allowed: {', '.join(backend_names())}"
        )
    options = dict(_parse_option(o) for o in args.option or [])
    try:
        create_backend(args.backend, **options)  # bad option names fail here, not at run time
    except TypeError as exc:
        raise ModelsCliError(
            f"backend {args.backend!r} does not take these options: {exc}"
        ) from None
    tracking = _tracking()
    version = tracking.register_generator(GeneratorConfig(args.backend, options), alias=args.alias)
    moved = f", alias {args.alias!r} now points at it" if args.alias else ""
    print(
        f"registered {tracking.model_name} v{version}: {GeneratorConfig(args.backend, options).describe()}{moved}"
    )
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    tracking = _tracking()
    tracking.set_alias(str(args.version).lstrip("v"), args.alias)
    print(
        f"{tracking.model_name}@{args.alias} -> v{str(args.version).lstrip('v')} (the next generation run uses it)"
    )
    return 0


def add_parser(sub: Any) -> None:
    """Add ``models`` and its subcommands to the ``sonicforge`` parser."""
    p = sub.add_parser("models", help="model weights and the generator registry (MLflow)")
    p.set_defaults(func=cmd_list)
    msub = p.add_subparsers(dest="models_command")

    sp = msub.add_parser("list", help="weights on this machine and registered generator versions")
    sp.set_defaults(func=cmd_list)

    sp = msub.add_parser("pull", help="download MusicGen weights into the Hugging Face cache")
    sp.add_argument("name", help="e.g. musicgen-small or facebook/musicgen-medium")
    sp.add_argument("--revision", default=None, help="a branch, tag or commit (default: main)")
    sp.add_argument(
        "--audiocraft", action="store_true", help="also fetch audiocraft's weight files"
    )
    sp.set_defaults(func=cmd_pull)

    sp = msub.add_parser("register", help="register a generator configuration as a new version")
    sp.add_argument("backend", help="procedural, musicgen or audiocraft")
    sp.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                    help="backend option (repeatable), e.g. -o model=facebook/musicgen-small -o guidance_scale=3.5")  # fmt: skip
    sp.add_argument("--alias", default=None, help="also point this alias at it (e.g. production)")
    sp.set_defaults(func=cmd_register)

    sp = msub.add_parser("alias", help="point an alias at a registered version")
    sp.add_argument("version", help="the version number, e.g. 2")
    sp.add_argument("--alias", default="production", help="default: production")
    sp.set_defaults(func=cmd_alias)
