"""The lakehouse: Delta tables written with ``deltalake`` and an audio store.

Writers call ``insert_new`` (skip rows whose key exists) or ``upsert``
(update matched rows, insert the rest); both merge on the table contract's
key, so re-running a partition never duplicates rows.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from sonicforge.errors import ConfigurationError, SonicForgeError
from sonicforge.storage import ObjectStore
from sonicforge.tables import CONTRACTS, TableContract, contract

if TYPE_CHECKING:
    from sonicforge.settings import Settings

Rows: TypeAlias = "pa.Table | Sequence[Mapping[str, Any]]"

# Every table's partitions share one Delta log, so writers of different
# partitions still race for the same next commit file. On S3 each commit is a
# PUT of ``_delta_log/<version>.json`` with ``If-None-Match: *`` (object
# store's "etag" conditional put; AWS S3, MinIO, R2, Ceph and moto honour
# it): of two writers racing for one version exactly one wins, the other
# retries on the next. ``AWS_S3_ALLOW_UNSAFE_RENAME`` (a plain overwrite)
# can lose a commit and is refused.
S3_SAFE_COMMIT = {"conditional_put": "etag"}
_CONDITIONAL_PUT_KEYS = ("conditional_put", "aws_conditional_put")
_UNSAFE_RENAME = "AWS_S3_ALLOW_UNSAFE_RENAME"
# Delta/Spark's default checkpoint interval (delta-rs's is 100): opening a
# table reads the last checkpoint plus at most this many commit files, which
# keeps each write of an append-heavy table cheap on an object store.
TABLE_CONFIGURATION: dict[str, str | None] = {"delta.checkpointInterval": "10"}
# A merge that lost a race to a concurrent commit is re-run on the new
# version (insert_new skips keys the winner added); this bounds the re-runs.
MERGE_ATTEMPTS = 20


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _key_filter(column: str, values: Sequence[str]) -> str:
    """A condition on the target's key column that every source key meets.
    delta-rs prunes files by it and checks concurrent commits against it, so
    writers of disjoint keys (two partitions) do not conflict."""
    if len(values) <= 1000:
        return f"t.{column} IN ({', '.join(_sql_string(v) for v in sorted(values))})"
    return f"t.{column} BETWEEN {_sql_string(min(values))} AND {_sql_string(max(values))}"


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def safe_storage_options(root_uri: str, options: Mapping[str, str] | None) -> dict[str, str]:
    """``options`` with the safe commit path for an ``s3://`` root, or a
    ConfigurationError naming what would make concurrent commits unsafe."""
    out = dict(options or {})
    if not root_uri.startswith(("s3://", "s3a://")):
        return out
    for key, value in out.items():
        if key.upper() == _UNSAFE_RENAME and _truthy(str(value)):
            raise ConfigurationError(
                f"storage option {key}={value!r} lets concurrent S3 commits overwrite each "
                "other; remove it: commits use conditional put (conditional_put='etag')"
            )
    if _truthy(os.environ.get(_UNSAFE_RENAME, "")):
        raise ConfigurationError(
            f"environment variable {_UNSAFE_RENAME} is set: it lets concurrent S3 commits "
            "overwrite each other; unset it: commits use conditional put (conditional_put='etag')"
        )
    given = {k: v for k, v in out.items() if k.lower() in _CONDITIONAL_PUT_KEYS}
    for key, value in given.items():
        if str(value).strip().lower() != "etag":
            raise ConfigurationError(
                f"storage option {key}={value!r} is not a safe commit path for S3; "
                "allowed: 'etag' (If-None-Match conditional put)"
            )
    if not given:
        out.update(S3_SAFE_COMMIT)
    return out


class Lakehouse:
    """Delta tables under one root (a local path or ``s3://…``)."""

    def __init__(self, root_uri: str, *, storage_options: Mapping[str, str] | None = None):
        self.root_uri = root_uri.rstrip("/")
        self._local = "://" not in self.root_uri or self.root_uri.startswith("file://")
        if self._local:
            self.root_uri = os.path.abspath(self.root_uri.removeprefix("file://"))
        self.storage_options = safe_storage_options(self.root_uri, storage_options)
        self.audio = ObjectStore(f"{self.root_uri}/audio", storage_options=self.storage_options)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lakehouse:
        """The lakehouse the settings name (``var/lake`` unless configured)."""
        return cls(
            settings.resolved_lakehouse_uri, storage_options=settings.lakehouse_storage_options
        )

    # -- tables -----------------------------------------------------------
    def table_uri(self, name: str) -> str:
        contract(name)
        return f"{self.root_uri}/{name}"

    def _open(self, name: str) -> DeltaTable | None:
        try:
            return DeltaTable(self.table_uri(name), storage_options=self.storage_options or None)
        except TableNotFoundError:
            return None

    def exists(self, name: str) -> bool:
        return self._open(name) is not None

    def ensure(self, name: str) -> None:
        """Create table ``name`` empty, with its contract's schema, if missing."""
        if not self.exists(name):
            self._create(name)

    def _create(self, name: str) -> None:
        c = contract(name)
        if self._local:
            os.makedirs(self.table_uri(name), exist_ok=True)
        write_deltalake(
            self.table_uri(name),
            c.schema.empty_table(),
            mode="ignore",
            partition_by=list(c.partition_by) or None,
            description=c.description,
            configuration=TABLE_CONFIGURATION,
            storage_options=self.storage_options or None,
        )

    def ensure_all(self, names: Iterable[str] | None = None) -> list[str]:
        names = list(names or CONTRACTS)
        for name in names:
            self.ensure(name)
        return names

    def table_names(self) -> list[str]:
        return [name for name in CONTRACTS if self.exists(name)]

    @staticmethod
    def conform(c: TableContract, rows: Rows) -> pa.Table:
        """Rows as a table of exactly the contract's schema, or a clear error."""
        try:
            if isinstance(rows, pa.Table):
                # A table written before a nullable column joined its
                # contract reads back with that column all null.
                for f in c.schema:
                    if f.name not in rows.column_names and f.nullable:
                        rows = rows.append_column(f.name, pa.nulls(rows.num_rows, f.type))
                return rows.select(c.columns).cast(c.schema)
            return pa.Table.from_pylist([dict(r) for r in rows], schema=c.schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowTypeError, ValueError) as exc:
            raise SonicForgeError(
                f"rows do not match the {c.name!r} contract (columns {c.columns}): {exc}"
            ) from exc

    def _merge(self, name: str, rows: Rows, *, update: bool) -> dict[str, int]:
        c = contract(name)
        data = self.conform(c, rows)
        if data.num_rows == 0:
            return {"inserted": 0, "updated": 0}
        keys = data.select(list(c.key)).to_pylist()
        if len({tuple(k.values()) for k in keys}) != len(keys):
            raise SonicForgeError(f"duplicate {c.key} values in rows written to {name!r}")
        predicate = " AND ".join(
            [f"t.{k} = s.{k}" for k in c.key]
            + [
                _key_filter(k, data[k].to_pylist())
                for k in c.key
                if pa.types.is_string(c.schema.field(k).type)
            ]
        )
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            dt = self._open(name)
            if dt is None:
                self._create(name)
                dt = self._open(name)
                assert dt is not None
            # New nullable contract columns are added to an older table's schema.
            evolve = not set(c.columns) <= {f.name for f in dt.schema().fields}
            merger = dt.merge(
                data, predicate, source_alias="s", target_alias="t", merge_schema=evolve
            )
            if update:
                merger = merger.when_matched_update_all()
            try:
                metrics = merger.when_not_matched_insert_all().execute()
                break
            except CommitFailedError as exc:
                # A concurrent writer committed data this merge had not read.
                if attempt == MERGE_ATTEMPTS:
                    raise SonicForgeError(
                        f"merge into {name!r} lost {MERGE_ATTEMPTS} races to concurrent "
                        f"commits: {exc}"
                    ) from exc
                time.sleep(random.uniform(0, 0.01 * 2 ** min(attempt, 6)))
        return {
            "inserted": int(metrics.get("num_target_rows_inserted", 0)),
            "updated": int(metrics.get("num_target_rows_updated", 0)),
        }

    def insert_new(self, name: str, rows: Rows) -> int:
        """Append rows whose key is not in the table yet; returns rows inserted."""
        return self._merge(name, rows, update=False)["inserted"]

    def upsert(self, name: str, rows: Rows) -> dict[str, int]:
        """Update rows whose key exists and insert the others."""
        return self._merge(name, rows, update=True)

    def read(
        self,
        name: str,
        *,
        columns: Sequence[str] | None = None,
        where: Mapping[str, Any] | None = None,
    ) -> pa.Table:
        """The table (empty, with its schema, if it does not exist yet),
        optionally restricted to rows whose columns equal ``where``'s values.

        Analysts filter and join through DuckDB (``analytics.sql``); this is
        the plain read that assets and services use.
        """
        c = contract(name)
        dt = self._open(name)
        if dt is None:
            return c.schema.empty_table().select(list(columns or c.columns))
        # Filters are pushed into the scan. delta-rs may write string
        # columns as string_view, which pyarrow cannot compare with a string
        # literal, so each filtered column is cast to its contract type first.
        expr = None
        for col, value in (where or {}).items():
            typ = c.schema.field(col).type
            term = pc.field(col).cast(typ) == pa.scalar(value, type=typ)
            expr = term if expr is None else expr & term
        table = self.conform(c, dt.to_pyarrow_dataset().to_table(filter=expr))
        return table.select(list(columns or c.columns))

    def ids(self, name: str, *, where: Mapping[str, Any] | None = None) -> set[Any]:
        """The key values present in ``name`` (single-column keys)."""
        (key,) = contract(name).key
        return set(self.read(name, columns=[key], where=where)[key].to_pylist())

    def count(self, name: str) -> int:
        dt = self._open(name)
        return 0 if dt is None else dt.count()

    def version(self, name: str) -> int | None:
        dt = self._open(name)
        return None if dt is None else dt.version()

    def compact(self, name: str) -> dict[str, Any]:
        """Merge small files (append-heavy tables collect many)."""
        dt = self._open(name)
        return {} if dt is None else dict(dt.optimize.compact())

    def vacuum(self, name: str, *, retention_hours: int = 168) -> list[str]:
        """Delete files no version younger than ``retention_hours`` uses."""
        dt = self._open(name)
        if dt is None:
            return []
        # The retention is the caller's explicit choice; delta-rs would
        # otherwise refuse anything under the table's 7-day default.
        return list(
            dt.vacuum(
                retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
            )
        )

    def dataset(self, name: str) -> Any:
        """A pyarrow dataset over the table's current version (for engines
        that cannot read the Delta log themselves)."""
        dt = self._open(name)
        if dt is None:
            return contract(name).schema.empty_table()
        return dt.to_pyarrow_dataset()
