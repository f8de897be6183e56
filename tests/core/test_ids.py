"""UUIDv7 and batch ids, written once in sonicforge.ids and used by every package."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestration import partitions
from serving.db import types as db_types
from serving.services import dagster as dagster_service
from sonicforge import ids
from streaming import plays


@pytest.fixture(autouse=True)
def fresh_uuid7_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pass their own times: ids made earlier in the process (at the real,
    later time) must not hold the strictly-increasing clock ahead of them."""
    monkeypatch.setattr(ids, "_last_ms", -1)
    monkeypatch.setattr(ids, "_last_rand", 0)


def test_uuid7_sets_version_variant_and_time() -> None:
    now = datetime(2026, 11, 24, 15, 45, 0, 123000, tzinfo=UTC)
    value = uuid.UUID(ids.uuid7(now))
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == int(now.timestamp() * 1000)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        str(value))  # fmt: skip


def test_uuid7_strictly_increases_within_a_millisecond_and_when_the_clock_steps_back() -> None:
    now = datetime(2026, 11, 24, 15, 45, tzinfo=UTC)
    same_ms = [ids.uuid7(now) for _ in range(2000)]
    assert same_ms == sorted(same_ms) and len(set(same_ms)) == len(same_ms)
    earlier = ids.uuid7(now - timedelta(seconds=5))
    assert earlier > same_ms[-1]
    later = ids.uuid7(now + timedelta(seconds=1))
    assert uuid.UUID(later).int >> 80 == int((now + timedelta(seconds=1)).timestamp() * 1000)
    unclocked = [ids.uuid7() for _ in range(2000)]
    assert unclocked == sorted(unclocked) and len(set(unclocked)) == len(unclocked)


def test_uuid7_refuses_a_time_outside_its_48_bits() -> None:
    with pytest.raises(ValueError, match="outside UUIDv7's range"):
        ids.uuid7(datetime(1960, 1, 1, tzinfo=UTC))


def test_batch_id_format_and_order() -> None:
    now = datetime(2026, 11, 24, 15, 45, 0, tzinfo=UTC)
    batch = ids.new_batch_id(now)
    assert re.fullmatch(r"b20261124-154500-[0-9a-f]{4}", batch)
    assert ids.is_batch_id(batch) and not ids.is_batch_id(batch + "0")
    # Another zone names the same UTC second; a later second sorts later.
    assert ids.new_batch_id(now.astimezone(timezone(timedelta(hours=9))))[:16] == batch[:16]
    assert ids.new_batch_id(now + timedelta(seconds=1)) > batch
    assert len({ids.new_batch_id(now) for _ in range(50)}) > 1


def test_callers_use_the_one_implementation(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 24, 15, 45, 0, tzinfo=UTC)
    monkeypatch.setattr(ids.secrets, "token_hex", lambda n: "ab" * n)
    assert partitions.new_batch_id(now=now) == "b20261124-154500-abab"
    assert dagster_service.new_batch_id(now) == "b20261124-154500-abab"
    monkeypatch.setattr(ids, "uuid7", lambda now=None: "from-sonicforge-ids")
    assert db_types.uuid7() == "from-sonicforge-ids"
    assert plays.new_play_id(now) == "from-sonicforge-ids"
