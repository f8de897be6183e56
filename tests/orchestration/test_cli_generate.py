from __future__ import annotations

import pytest

from cli.main import main
from sonicforge.lakehouse import Lakehouse
from sonicforge.settings import get_settings


def test_generate_runs_the_pipeline_and_prints_the_batch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["generate", "--genre", "techno", "--count", "1", "--duration", "10", "--seed", "7"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "succeeded" in out and "techno" in out
    s = get_settings()
    lh = Lakehouse(s.resolved_lakehouse_uri)
    (track,) = lh.read("tracks").to_pylist()
    assert track["seed"] == 7 and track["genre"] == "techno"
    assert lh.count("rotation") == 1
    assert s.resolved_duckdb_path.exists()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--genre", "polka"], "polka"),
        (["--duration", "5"], "duration_s"),
        (["--count", "0"], "count"),
        (["--genre", "house", "--bpm", "200"], "bpm"),
        (["--backend", "nope"], "allowed: "),
    ],
)
def test_generate_refuses_bad_input(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert "Traceback" not in err


def test_generate_checks_the_request_against_the_generator_the_alias_names(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The production alias points at MusicGen: the request is checked and
    announced for MusicGen, which is what the run will use."""
    from models.tracking import GeneratorConfig
    from orchestration import launch
    from orchestration.environment import resources_for

    tracking = resources_for()["mlflow"].tracking()
    version = tracking.register_generator(
        GeneratorConfig("musicgen", {"model": "facebook/musicgen-small", "device": "cpu"})
    )
    tracking.set_alias(version, "production")
    launched: list[object] = []

    def fake_launch(config: object, **_: object) -> launch.LaunchResult:
        launched.append(config)
        return launch.LaunchResult("b-x", "r-x", True, [], [])

    monkeypatch.setattr(launch, "launch_generation", fake_launch)
    argv = ["generate", "--genre", "ambient", "--count", "1", "--duration", "30"]
    assert main(argv) == 0
    assert "backend musicgen" in capsys.readouterr().out and len(launched) == 1
    # MusicGen's prompts carry a bpm only within the genre's range.
    assert main(["generate", "--genre", "house", "--bpm", "200", "--duration", "30"]) == 2
    assert "bpm" in capsys.readouterr().err
    # A backend named on the command line still wins over the alias.
    assert main([*argv, "--backend", "procedural"]) == 0
    assert "backend procedural" in capsys.readouterr().out
