"""`llm_usage` events as Parquet, partitioned by UTC day, for engines past one machine.

`DIR/day=YYYY-MM-DD/events-<digest>.parquet` (Hive-style partitions, which DuckDB,
Spark, BigQuery external tables, ClickHouse and Athena read as a `day` column). The
schema is stable: one typed column per event field, whether or not a log has it
(missing is null); `models`, `metadata`, `flags` and `budget` are JSON strings, since
their keys differ from event to event. Only events that pass the report's validity rule
are written, so a warehouse sums what `agent-usage report` sums.

Appendable day by day: a run writes the days it read and leaves the others alone, and a
day it writes replaces that day's earlier files (so export whole days: exporting a day
again, or a day that has grown, never duplicates an event). Streaming: at most
`rows_per_file` events per day in memory.

Needs pyarrow (the `[parquet]` extra), imported at use.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import orjson

from ._engine_python import COUNT_FIELDS, WITHOUT, to_utc
from ._extras import missing_extra
from ._source import BoundArg, EventSource, PathsArg

__all__ = ["SCHEMA_FIELDS", "export_parquet"]


# name -> Arrow type name: the stable schema, in column order.
SCHEMA_FIELDS: dict[str, str] = {
    "type": "string",
    "schema": "int64",
    "event_id": "string",
    "invoke_id": "string",
    "timestamp": "timestamp",
    "session_id": "string",
    "model": "string",
    "host": "string",
    "status": "string",
    "duration_ms": "float64",
    **dict.fromkeys(COUNT_FIELDS, "int64"),
    WITHOUT: "int64",
    "llm_cache_hits": "int64",
    "cost_usd": "float64",
    "cache_savings_usd": "float64",
    "models": "json",
    "metadata": "json",
    "flags": "json",
    "budget": "json",
}


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise missing_extra("Parquet export", "parquet", exc) from None
    return pa, pq


def _schema(pa: Any) -> Any:
    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "json": pa.string(),
    }
    return pa.schema([pa.field(name, types[t]) for name, t in SCHEMA_FIELDS.items()])


def _cell(kind: str, value: Any) -> Any:
    """`value` as the column's type, or None when it is not one (fields the rule does
    not read, like `duration_ms`, may hold anything another writer put there)."""
    if value is None:
        return None
    if kind == "json":
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "int64":
        return value if type(value) is int and -(2**63) <= value < 2**63 else None
    if kind == "float64":
        return float(value) if type(value) in (int, float) else None
    return value


def export_parquet(
    paths: PathsArg,
    out_dir: str | os.PathLike[str],
    *,
    since: BoundArg = None,
    until: BoundArg = None,
    rows_per_file: int = 100_000,
) -> dict[str, int]:
    """Write the valid `llm_usage` events of `paths` under `out_dir/day=YYYY-MM-DD/`.

    Args:
        paths: a log, a glob, or a list of them (rotated files included).
        out_dir: the dataset's root directory (created if missing).
        since, until: as for `report`.
        rows_per_file: events per file at most (bounds memory).

    Returns:
        Events written per day.

    Raises:
        ImportError: pyarrow is not installed.
        FileNotFoundError: a path does not exist.
    """
    pa, pq = _pyarrow()
    schema = _schema(pa)
    source = EventSource(paths, since=since, until=until)
    buffers: dict[str, list[Mapping[str, Any]]] = {}
    written: dict[str, int] = {}
    files: dict[str, set[str]] = {}
    for record, e in source.pairs():
        ts = to_utc(record.timestamp)  # type: ignore[arg-type]  # the rule requires one
        day = ts.date().isoformat()
        row = {name: _cell(kind, e.get(name)) for name, kind in SCHEMA_FIELDS.items()}
        row["timestamp"] = ts
        buf = buffers.setdefault(day, [])
        buf.append(row)
        if len(buf) >= rows_per_file:
            files.setdefault(day, set()).add(_write(pa, pq, schema, out_dir, day, buf))
            written[day] = written.get(day, 0) + len(buf)
            buf.clear()
    for day, buf in buffers.items():
        if buf:
            files.setdefault(day, set()).add(_write(pa, pq, schema, out_dir, day, buf))
            written[day] = written.get(day, 0) + len(buf)
    for day, names in files.items():
        # The day's files from earlier runs: replaced by this run's.
        directory = os.path.join(os.fspath(out_dir), f"day={day}")
        for name in os.listdir(directory):
            if name.endswith(".parquet") and name not in names:
                os.unlink(os.path.join(directory, name))
    return dict(sorted(written.items()))


def _write(
    pa: Any,
    pq: Any,
    schema: Any,
    out_dir: str | os.PathLike[str],
    day: str,
    rows: list[Mapping[str, Any]],
) -> str:
    """One Parquet file, written to a temporary name and renamed (never half a file).

    Returns its name, a digest of the events it holds.
    """
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row['event_id']}|{row['timestamp']}|{row['invoke_id']}\n".encode())
    directory = os.path.join(os.fspath(out_dir), f"day={day}")
    os.makedirs(directory, exist_ok=True)
    name = f"events-{digest.hexdigest()[:20]}.parquet"
    path = os.path.join(directory, name)
    table = pa.Table.from_pylist(rows, schema=schema)
    tmp = path + ".tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.chmod(tmp, 0o600)  # derived from the log: its user and session ids stay private
    os.replace(tmp, path)
    return name
