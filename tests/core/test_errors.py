"""One exception root: every error the project defines derives from SonicForgeError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

from cli.main import CliError, main
from models.errors import InvalidSpecError, ModelsError
from serving.exceptions import ServingError
from sonicforge.errors import SonicForgeError
from streaming.errors import StreamingError

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("sonicforge", "models", "orchestration", "assets", "analytics", "serving", "streaming", "cli")  # fmt: skip


@pytest.mark.parametrize("root", [ModelsError, ServingError, StreamingError, CliError])
def test_each_package_root_derives_from_sonicforge_error(root: type[Exception]) -> None:
    assert issubclass(root, SonicForgeError)


def test_every_exception_defined_in_the_packages_derives_from_the_root() -> None:
    strays = []
    for package in PACKAGES:
        importlib.import_module(package)
        # pytest puts tests/ on sys.path, so a test folder named like a package
        # (tests/analytics) joins that package's path: walk the package's own folder.
        for info in pkgutil.walk_packages([str(REPO / package)], f"{package}."):
            mod = importlib.import_module(info.name)
            for name, obj in vars(mod).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseException)
                    and obj.__module__ == info.name
                    and not issubclass(obj, SonicForgeError)
                ):
                    strays.append(f"{info.name}.{name}")
    assert strays == [], f"exceptions outside the SonicForgeError tree: {strays}"


def test_cli_prints_any_project_error_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    import cli.main as cli_main

    def fail(_args: argparse.Namespace) -> int:
        raise InvalidSpecError("value 0 for 'count' is out of range [1, 64]")

    class Parser:
        def parse_args(self, _argv: object) -> argparse.Namespace:
            return argparse.Namespace(func=fail)

    monkeypatch.setattr(cli_main, "build_parser", Parser)
    assert main([]) == 2
    assert capsys.readouterr().err == "error: value 0 for 'count' is out of range [1, 64]\n"
