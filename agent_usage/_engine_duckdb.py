"""The DuckDB engine: the report's sums in one SQL scan, under the same rule as Python.

The `llm_usage` rule of `_engine_python` written in SQL: every field a report reads is
read as raw JSON and checked for its JSON type and range (counts are integers in
[0, 10**15], money finite and in range, strings are strings, the timestamp an RFC 3339
date-time, each model share the same), so a line the Python reader refuses is refused
here too and the totals agree to the token. Lines DuckDB cannot parse (torn, not JSON)
are skipped by `ignore_errors` and, unlike the Python reader, not counted.

One scan serves every grouping an `Aggregate` asks for: model shares are unnested
(one row per share) and event-level sums are taken on each event's first share only,
so `GROUPING SETS` give sessions, days, hours, hosts, models and the total at once.

Needs the `[duckdb]` extra; imported only when `engine="duckdb"` is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._engine_python import COUNT_FIELDS, MAX_COUNT, MAX_USD
from ._extras import missing_extra
from ._match import MAX_LINE

if TYPE_CHECKING:
    from ._report import Aggregate, EventSource

__all__ = ["aggregate", "require"]

_STRINGS = ("session_id", "model", "host", "status", "parent_invoke_id")
_MONEY = ("cost_usd", "cache_savings_usd")
# The Python rule's timestamp (msgspec's RFC 3339 reader), which DuckDB's cast is
# looser than (it also takes a bare date, 24:00, a "+05" offset).
_TS_RE = r"\d{4}-\d{2}-\d{2}[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?"


def _lambda(param: str, body: str) -> str:
    """A SQL lambda: `lambda x: ...` since DuckDB 1.3 (2.0 refuses the old `x -> ...`)."""
    import duckdb

    major, minor = (int(p) for p in duckdb.__version__.split(".")[:2])
    return f"lambda {param}: {body}" if (major, minor) >= (1, 3) else f"{param} -> {body}"


def require() -> Any:
    """The duckdb module, or ImportError naming the extra."""
    try:
        import duckdb
    except ImportError as exc:
        raise missing_extra("the duckdb engine", "duckdb", exc) from None
    return duckdb


# The checks read the JSON text of each value (DuckDB keeps JSON columns as text):
# string tests on a few bytes, where json_type() would parse every value again.
def _count_ok(j: str) -> str:
    """SQL: the JSON value `j` is a valid count (missing, null, or an int in range)."""
    return (
        f"({j} IS NULL OR {j}::VARCHAR = 'null'"
        f" OR (regexp_full_match({j}::VARCHAR, '[0-9]{{1,16}}')"
        f" AND TRY_CAST({j}::VARCHAR AS BIGINT) <= {MAX_COUNT}))"
    )


def _money_ok(j: str, low: float) -> str:
    """SQL: a JSON number (int or float) in [low, MAX_USD], or missing / null."""
    return (
        f"({j} IS NULL OR {j}::VARCHAR = 'null' OR"
        f" (regexp_full_match({j}::VARCHAR, '-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?')"
        f" AND TRY_CAST({j}::VARCHAR AS DOUBLE) BETWEEN {low!r} AND {MAX_USD!r}))"
    )


def _string_ok(j: str) -> str:
    return f"({j} IS NULL OR {j}::VARCHAR = 'null' OR starts_with({j}::VARCHAR, '\"'))"


def _count(j: str) -> str:
    return f"COALESCE(TRY_CAST({j}::VARCHAR AS BIGINT), 0)"


def _share_ok(s: str) -> str:
    """SQL: the share struct `s` (fields as raw JSON) follows the rule."""
    checks = [_count_ok(f"{s}.{f}") for f in COUNT_FIELDS]
    checks.append(_money_ok(f"{s}.cost_usd", 0.0))
    checks.append(_money_ok(f"{s}.cache_savings_usd", -MAX_USD))
    return "(" + " AND ".join(checks) + ")"


# models cast once to a map of structs whose fields stay raw JSON (checked like the
# event's own): one parse per event instead of one per field read.
_SHARE_TYPE = (
    "MAP(VARCHAR, STRUCT(" + ", ".join(f"{f} JSON" for f in (*COUNT_FIELDS, *_MONEY)) + "))"
)


def _events_sql(files: Sequence[str]) -> str:
    """SQL for one row per `llm_usage` line: `ok` (the rule) and the typed fields."""
    columns = ", ".join(
        f"{f}: 'JSON'"
        for f in ("timestamp", *_STRINGS, *COUNT_FIELDS, "llm_calls_without_usage", *_MONEY)
    )
    is_object = _lambda("t", "t = 'OBJECT'")
    share_valid = _lambda("s", _share_ok("s"))
    valid = [
        "starts_with(timestamp::VARCHAR, '\"')",
        f"regexp_full_match(timestamp ->> '$', '{_TS_RE}')",
        "ts IS NOT NULL",
        *(_string_ok(f) for f in _STRINGS),
        *(_count_ok(f) for f in (*COUNT_FIELDS, "llm_calls_without_usage")),
        _money_ok("cost_usd", 0.0),
        _money_ok("cache_savings_usd", -MAX_USD),
        "(models IS NULL OR json_type(models) = 'NULL' OR (json_type(models) = 'OBJECT'"
        " AND m IS NOT NULL"
        # every share an object (the cast reads a string share as all-null fields)
        " AND COALESCE(list_bool_and(list_transform(json_type(models, '$.*'),"
        f" {is_object})), true)"
        f" AND COALESCE(list_bool_and(list_transform(map_values(m), {share_valid})),"
        " true)))",
    ]
    file_list = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    # maximum_object_size: DuckDB reserves buffers of that size per thread. It is not a
    # limit: DuckDB 1.x reads longer lines too, so this engine counts a valid event on
    # a line over MAX_LINE, which every other reader skips (see docs/scale.md).
    return f"""
        SELECT *, COALESCE({" AND ".join(valid)}, false) AS ok
        FROM (
            SELECT *,
                TRY_CAST(upper(timestamp ->> '$') AS TIMESTAMPTZ) AS ts,
                TRY_CAST(models AS {_SHARE_TYPE}) AS m
            FROM read_ndjson([{file_list}], columns={{type: 'VARCHAR', {columns}, models: 'JSON'}},
                             format='newline_delimited', ignore_errors=true,
                             maximum_object_size={MAX_LINE})
            -- A nested invoke's event: its calls are already in the outer event.
            WHERE type = 'llm_usage'
                AND NOT COALESCE(starts_with(parent_invoke_id::VARCHAR, '"'), false)
        )
    """


def _money(j: str) -> str:
    return f"TRY_CAST({j}::VARCHAR AS DOUBLE)"


def aggregate(source: EventSource, aggs: Sequence[Aggregate]) -> None:
    """Fill `aggs` from `source` in one scan (`feed_all` sums a re-priced source in Python)."""
    duckdb = require()
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        # Sums do not depend on row order: DuckDB may then stream with less memory.
        con.execute("SET preserve_insertion_order = false")
        # DuckDB otherwise caches up to 80% of RAM; a streaming scan needs far less
        # (about 240 MB for a 1,000,000-line log).
        con.execute("SET memory_limit = '512MB'")
        _run(con, source, aggs)
    finally:
        con.close()


# Group keys per `by`, as SQL over the shares relation.
_KEYS = {
    "session": "session_id ->> '$'",
    "day": "CAST(ts AS DATE)",
    "hour": "strftime(ts, '%Y-%m-%dT%H')",
    "host": "host ->> '$'",
    "model": "share_name",
    "label": "model ->> '$'",  # calls without usage count under the event's label
    "status": "status ->> '$'",
}
_WIDTH = len(COUNT_FIELDS) + 7  # a sums row: counts, without, cost, savings, 4 tallies


def _tallies(first: str, counts: list[str], without: str, cost: str, saved: str) -> str:
    """SQL for one sums row (in `new_sums` order) over the rows where `first` holds."""
    cols = [f"sum(CASE WHEN {first} THEN {c} ELSE 0 END)" for c in counts]
    cols.append(f"sum(CASE WHEN {first} THEN {without} ELSE 0 END)")
    cols.append(f"sum(CASE WHEN {first} THEN {cost} END)")
    cols.append(f"sum(CASE WHEN {first} THEN {saved} END)")
    cols.append(f"count(*) FILTER ({first})")
    return ", ".join(cols)


def _run(con: Any, source: EventSource, aggs: Sequence[Aggregate]) -> None:
    bys = sorted({a.by for a in aggs})
    sets = [*bys, "status"] + (["label"] if "model" in bys else [])
    params: list[Any] = []
    in_range = "true"
    if source.since is not None:
        in_range += " AND ts >= ?"
        params.append(source.since)
    if source.until is not None:
        in_range += " AND ts < ?"
        params.append(source.until)
    # An event unpriced as a whole still adds its priced models' share (2+ models).
    known = {
        f: f"COALESCE({_money(f)}, CASE WHEN cardinality(m) > 1 THEN list_sum(list_transform("
        f"map_values(m), {_lambda('s', _money(f's.{f}'))})) END)"
        for f in _MONEY
    }
    # Event-level figures are taken on each event's first share row only.
    ev_cols = _tallies(
        "i = 1",
        [_count(f) for f in COUNT_FIELDS],
        _count("llm_calls_without_usage"),
        known["cost_usd"],
        known["cache_savings_usd"],
    )
    ev_cols += (
        f", count(*) FILTER (i = 1 AND {_money('cost_usd')} IS NULL)"
        f", count(*) FILTER (i = 1 AND {known['cost_usd']} IS NULL)"
        f", count(*) FILTER (i = 1 AND {known['cache_savings_usd']} IS NULL)"
    )
    # A share is the models entry, or the event itself when it has no breakdown.
    share = {f: f"CASE WHEN has THEN v.{f} ELSE {f} END" for f in (*COUNT_FIELDS, *_MONEY)}
    sh_cols = _tallies(
        "true",
        [_count(share[f]) for f in COUNT_FIELDS],
        "0",
        _money(share["cost_usd"]),
        _money(share["cache_savings_usd"]),
    )
    sh_cols += (
        f", count(*) FILTER ({_money(share['cost_usd'])} IS NULL)" * 2
        + f", count(*) FILTER ({_money(share['cache_savings_usd'])} IS NULL)"
    )
    keys = [_KEYS[s] for s in sets]
    # Only by model is each share a row; otherwise one row per event.
    unnest = (
        """cardinality(m) > 0 AS has,
        unnest(CASE WHEN cardinality(m) > 0 THEN map_keys(m) ELSE [NULL] END) AS k,
        unnest(CASE WHEN cardinality(m) > 0 THEN map_values(m) ELSE [NULL] END) AS v,
        unnest(CASE WHEN cardinality(m) > 0 THEN range(1, cardinality(m)::BIGINT + 1)
               ELSE [1] END) AS i"""
        if "model" in bys
        else "false AS has, NULL AS k, NULL AS v, 1 AS i"
    )
    sql = f"""
        WITH ev AS ({_events_sql(source.reader.files)}),
        shares AS (
            SELECT *,
                CASE WHEN has THEN k ELSE model ->> '$' END AS share_name
            FROM (
                SELECT *, {unnest}
                FROM ev
                WHERE NOT ok OR ({in_range})
            )
        )
        SELECT ok, [{", ".join(f"GROUPING({k})" for k in keys)}], {", ".join(keys)},
            {ev_cols}, {sh_cols}
        FROM shares
        GROUP BY GROUPING SETS ((ok), {", ".join(f"(ok, {k})" for k in keys)})
    """
    rows = con.execute(sql, params).fetchall()
    _load(rows, sets, aggs)


def _load(rows: list[tuple[Any, ...]], sets: list[str], aggs: Sequence[Aggregate]) -> None:
    """Hand each grouping's rows to the aggregates that asked for it."""
    n = len(sets)
    for ok, flags, *rest in rows:
        keys, ev_part, sh_part = rest[:n], rest[n : n + _WIDTH], rest[n + _WIDTH :]
        grouped = [s for s, flag in zip(sets, flags, strict=True) if flag == 0]
        if not ok:
            if not grouped:  # the malformed events: counted once, by the engine
                for agg in aggs:
                    agg.load_malformed(ev_part[len(COUNT_FIELDS) + 3])
            continue
        if not grouped:
            for agg in aggs:
                if agg.by == "model":
                    agg.load_total(_sums(ev_part))
            continue
        (by,) = grouped
        key = keys[sets.index(by)]
        for agg in aggs:
            if by == "status":
                agg.load_status(key, ev_part[len(COUNT_FIELDS) + 3])
            elif by == "label" and agg.by == "model":
                without = _sums(ev_part)
                if without[1]:
                    agg.load(key, _only_without(without[1]))
            elif agg.by == by:
                agg.load(key, _sums(sh_part if by == "model" else ev_part))


def _only_without(n: int) -> list[Any]:
    from ._report import new_sums

    sums = new_sums()
    sums[1] = n
    return sums


def _sums(part: Sequence[Any]) -> list[Any]:
    """A SQL sums row as `new_sums` lays it out."""
    k = len(COUNT_FIELDS)
    return [
        [int(v or 0) for v in part[:k]],
        int(part[k] or 0),
        float(part[k + 1] or 0.0),
        float(part[k + 2] or 0.0),
        *(int(v or 0) for v in part[k + 3 : k + 7]),
    ]
