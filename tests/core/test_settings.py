from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from sonicforge.errors import ConfigurationError
from sonicforge.settings import Settings


def test_embedded_defaults_live_under_var(tmp_path: Path) -> None:
    s = Settings(var_dir=tmp_path / "var")
    assert s.resolved_lakehouse_uri == str((tmp_path / "var" / "lake").absolute())
    assert s.resolved_app_database_url.startswith("sqlite:///")
    assert s.resolved_mlflow_tracking_uri.endswith("mlflow.db")


def test_production_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONICFORGE_LAKEHOUSE_URI", "s3://radio/lake")
    monkeypatch.setenv("SONICFORGE_LAKEHOUSE_STORAGE_OPTIONS", '{"AWS_REGION": "eu-west-1"}')
    s = Settings()
    assert s.resolved_lakehouse_uri == "s3://radio/lake"
    assert s.lakehouse_storage_options == {"AWS_REGION": "eu-west-1"}


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("STREAM_HLS_BITRATES_KBPS", "64, 128,", "stream_hls_bitrates_kbps", [64, 128]),
        ("STREAM_HLS_BITRATES_KBPS", "[96, 192]", "stream_hls_bitrates_kbps", [96, 192]),
        ("CORS_ORIGINS", " https://a.example , https://b.example", "cors_origins",
         ["https://a.example", "https://b.example"]),
        ("CORS_ORIGINS", '["https://a.example"]', "cors_origins", ["https://a.example"]),
    ],
)  # fmt: skip
def test_lists_come_as_json_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: list[object]
) -> None:
    monkeypatch.setenv(f"SONICFORGE_{variable}", value)
    assert getattr(Settings(), field) == expected


def test_bad_storage_options_say_what_is_expected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONICFORGE_LAKEHOUSE_STORAGE_OPTIONS", "region=eu")
    with pytest.raises(ValidationError, match="must be a JSON object"):
        Settings()


def test_production_refuses_embedded_defaults() -> None:
    with pytest.raises(ConfigurationError, match="SONICFORGE_APP_DATABASE_URL"):
        Settings(environment="production", lakehouse_uri="s3://x/y").check_production()


@pytest.mark.parametrize("kbps", ["100", "129", "31"])
def test_the_mp3_bitrate_must_be_an_mp3_bitrate(monkeypatch: pytest.MonkeyPatch, kbps: str) -> None:
    monkeypatch.setenv("SONICFORGE_STREAM_MP3_BITRATE_KBPS", kbps)
    with pytest.raises(ValidationError, match="stream_mp3_bitrate_kbps"):
        Settings()
    monkeypatch.setenv("SONICFORGE_STREAM_MP3_BITRATE_KBPS", "192")
    assert Settings().stream_mp3_bitrate_kbps == 192
