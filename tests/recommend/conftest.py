"""The serving fixtures (app database, lakehouse-backed API, accounts)."""

from tests.serving.conftest import *  # noqa: F403
