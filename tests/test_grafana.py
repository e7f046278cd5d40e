"""The Grafana dashboard queries only what the OTel exporter emits, by its Prometheus names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Histogram, InMemoryMetricReader, Sum

from agent_usage.exporters import OTelExporter
from agent_usage.exporters import _otel_names as names

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboards" / "grafana" / "agent-usage.json"

# How OTLP names become Prometheus names: the OpenTelemetry-to-Prometheus
# compatibility spec as implemented by prometheus/otlptranslator (the OTel
# collector's Prometheus exporters and Prometheus's own OTLP receiver, strategy
# UnderscoreEscapingWithSuffixes): invalid characters to "_", the unit appended
# (UCUM units mapped, `{annotations}` dropped, others kept), "_total" on
# monotonic counters, and histograms as _bucket/_sum/_count series.
UNITS = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "", "%": "percent"}
PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def _clean(unit: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^a-zA-Z0-9:]", "_", unit)).lstrip("_")


def prometheus_base_name(name: str, unit: str, kind: str) -> str:
    """The Prometheus metric name of an OpenTelemetry instrument (before histogram suffixes)."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9:]", name) if t]
    main, _, per = unit.partition("/")
    main = "" if not main.strip() or re.search(r"[{}]", main) else UNITS.get(main, main)
    per = "" if not per or re.search(r"[{}]", per) else "per_" + PER_UNITS.get(per, per)
    main, per = _clean(main).rstrip("_"), _clean(per).rstrip("_")
    if main and main not in tokens:
        tokens.append(main)
    if per and per not in tokens:
        tokens.append(per)
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    return "_".join(tokens)


def prometheus_series(instrument: names.Instrument) -> set[str]:
    """Every series name Prometheus stores for an instrument."""
    base = prometheus_base_name(instrument.name, instrument.unit, instrument.kind)
    if instrument.kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}


EMITTED = {series for inst in names.INSTRUMENTS for series in prometheus_series(inst)}

# Every attribute the exporter puts on a metric point, as recorded through the SDK
# (session id included: it is a label when the user opts in).
FULL_EVENT: dict[str, Any] = {
    "type": "llm_usage",
    "status": "ok",
    "session_id": "s",
    "duration_ms": 10.0,
    "models": {
        "m": {
            "provider": "openai",
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 4,
            "cache_creation_input_tokens": 1,
            "reasoning_tokens": 2,
            "cost_usd": 0.1,
        }
    },
}


def emitted_metrics(**options: Any) -> list[Any]:
    """The metrics the exporter records for FULL_EVENT, read back from the SDK."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    OTelExporter(provider, spans=False, **options).export(FULL_EVENT)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics]


ATTRIBUTES = {
    key
    for metric in emitted_metrics(session_id_on_metrics=True)
    for point in metric.data.data_points
    for key in point.attributes or {}
}
LABELS = {re.sub(r"[^a-zA-Z0-9_]", "_", a) for a in ATTRIBUTES} | {"le"}

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless",
}  # fmt: skip


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def parse(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) used by a PromQL expression."""
    labels: set[str] = set()
    for block in re.findall(r"\{([^}]*)\}", expr):
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", block))
    for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        labels |= {g.strip() for g in group.split(",") if g.strip()}
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", bare)
    metrics = {
        m.group(1)
        for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", bare)
        if not m.group(2) and m.group(1) not in PROMQL_WORDS
    }
    return metrics, labels


def test_prometheus_names_of_the_instruments() -> None:
    """The translation gives the names the README documents."""
    assert {
        "gen_ai_client_token_usage_bucket",
        "gen_ai_client_token_usage_sum",
        "gen_ai_client_token_usage_count",
        "agent_usage_token_usage_total",
        "gen_ai_usage_cost_USD_bucket",
        "gen_ai_usage_cost_USD_sum",
        "gen_ai_usage_cost_USD_count",
        "agent_usage_invokes_total",
        "agent_usage_invoke_duration_seconds_bucket",
        "agent_usage_invoke_duration_seconds_sum",
        "agent_usage_invoke_duration_seconds_count",
    } == EMITTED


@pytest.mark.parametrize(
    ("name", "unit", "kind", "expected"),
    [
        ("http.server.request.duration", "s", "histogram", "http_server_request_duration_seconds"),
        ("requests.count", "1", "counter", "requests_count_total"),
        ("memory.usage", "By", "gauge", "memory_usage_bytes"),
        ("net.io", "By/s", "gauge", "net_io_bytes_per_second"),
        ("tokens.total", "{token}", "counter", "tokens_total"),
    ],
    ids=["seconds", "ratio-counter", "bytes", "per-second", "annotation-dropped"],
)
def test_translation_matches_otlptranslator_examples(
    name: str, unit: str, kind: str, expected: str
) -> None:
    """The translation reproduces otlptranslator's documented examples."""
    assert prometheus_base_name(name, unit, kind) == expected


def test_instruments_table_is_what_the_sdk_emits() -> None:
    """INSTRUMENTS (name, unit, kind) is exactly what the exporter records through the SDK."""
    seen = set()
    for metric in emitted_metrics():
        if isinstance(metric.data, Histogram):
            kind = "histogram"
        else:
            assert isinstance(metric.data, Sum) and metric.data.is_monotonic
            kind = "counter"
        seen.add((metric.name, metric.unit, kind))
    assert seen == {(i.name, i.unit, i.kind) for i in names.INSTRUMENTS}


def test_labels_are_the_semantic_conventions() -> None:
    """The labels the dashboard may use include the semconv attributes the exporter emits."""
    assert {
        "gen_ai_token_type",
        "gen_ai_response_model",
        "gen_ai_provider_name",
        "gen_ai_conversation_id",
        "agent_usage_status",
        "agent_usage_token_type",
    } <= LABELS


def test_dashboard_is_valid_json_with_a_datasource_variable() -> None:
    """The dashboard parses, and every panel and query uses the ${datasource} variable."""
    dashboard = load()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_has_the_promised_panels() -> None:
    """Stats for cost, tokens, invokes; series for cost/h, tokens/min, cache, reasoning."""
    titles = {(p["type"], p["title"]) for p in load()["panels"]}
    stats = {t for kind, t in titles if kind == "stat"}
    series = {t for kind, t in titles if kind == "timeseries"}
    assert {"Cost (range)", "Tokens (range)", "Invokes (range)"} <= stats
    for wanted in ("Cost per hour", "Tokens per minute", "Cache hit rate", "Reasoning share"):
        assert any(t.startswith(wanted) for t in series), wanted


@pytest.mark.parametrize("expr", exprs(load()), ids=lambda e: e[:60])
def test_every_query_uses_only_emitted_metrics_and_labels(expr: str) -> None:
    """Each PromQL expression names only series and labels the exporter produces."""
    metrics, labels = parse(expr)
    assert metrics, expr
    assert metrics <= EMITTED, metrics - EMITTED
    assert labels <= LABELS, labels - LABELS


def test_template_queries_use_emitted_names() -> None:
    """The model variable's label_values query names an emitted series and label."""
    for variable in load()["templating"]["list"]:
        if variable["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
        assert m is not None
        assert m.group(1) in EMITTED
        assert m.group(2) in LABELS


def test_every_instrument_is_on_the_dashboard() -> None:
    """No exported metric is left off the dashboard."""
    used = set().union(*(parse(e)[0] for e in exprs(load())))
    for inst in names.INSTRUMENTS:
        assert prometheus_series(inst) & used, inst
