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
