"""`agent-usage export otel|posthog|parquet PATH...`: back-fill logs into OpenTelemetry or
PostHog, or write them as a Parquet dataset (`export_parquet`).

Reads the `llm_usage` events of PATH (and its rotated siblings) as `agent-usage
report` does (same --since/--until), sends them through the same exporters the
wrapper uses (OpenTelemetry: its own OTLP/HTTP providers), shuts them down within
--timeout, and prints what the endpoint took and what it did not, and why:
``delivered N, not delivered M (...)``. For PostHog the unit is the
`$ai_generation` event (one per model of an invoke); for OpenTelemetry an event is
delivered when its span and the metrics covering it were taken. Exit code 0 when
everything was delivered, 1 otherwise.
"""

from __future__ import annotations

import argparse
import itertools
import os
from typing import Any

from ._common import CliError, add_time_arguments, open_source, positive_float

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `agent-usage export`."""
    parser.add_argument(
        "target", choices=("otel", "posthog", "parquet"), help="where to send the events"
    )
    parser.add_argument(
        "path", nargs="+", help="event logs or globs to back-fill (rotated files included)"
    )
    parser.add_argument(
        "-o", "--output", metavar="DIR", help="parquet: the dataset's root directory"
    )
    add_time_arguments(parser)
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="otel: OTLP/HTTP base URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT or "
        "http://localhost:4318); posthog: the PostHog host",
    )
    parser.add_argument(
        "--api-key", metavar="KEY", help="posthog: project API key (default: $POSTHOG_API_KEY)"
    )
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        type=_header,
        metavar="NAME=VALUE",
        help="otel: an HTTP header for the OTLP exporter (repeatable)",
    )
    parser.add_argument("--service-name", default="agent-usage", help="otel: service.name")
    parser.add_argument("--no-spans", action="store_true", help="otel: metrics only")
    parser.add_argument(
        "--session-id-on-metrics",
        action="store_true",
        help="otel: put the session id on metric points (high cardinality)",
    )
    parser.add_argument(
        "--distinct-id-key",
        default="user_id",
        help="posthog: metadata key holding the distinct id (default: user_id)",
    )
    parser.add_argument(
        "--historical", action="store_true", help="posthog: mark events as a historical import"
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="seconds each export and the final flush may take (default: 30)",
    )


def _header(text: str) -> tuple[str, str]:
    """An argparse `type=`: NAME=VALUE."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"must be NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _otel_exporter(args: argparse.Namespace) -> Any:
    from ..exporters.otel import OTelExporter

    return OTelExporter.otlp_http(
        args.endpoint,
        headers=dict(args.header),
        service_name=args.service_name,
        timeout=args.timeout,
        export_interval=3600.0,  # the back-fill flushes itself, every _CHUNK events
        exit_timeout=args.timeout,
        spans=not args.no_spans,
        session_id_on_metrics=args.session_id_on_metrics,
    )


def _posthog_exporter(args: argparse.Namespace) -> Any:
    api_key = args.api_key or os.environ.get("POSTHOG_API_KEY")
    if not api_key:
        raise CliError("posthog needs --api-key (or $POSTHOG_API_KEY)")
    from ..exporters.posthog import PostHogExporter

    return PostHogExporter(
        api_key,
        host=args.endpoint,
        distinct_id_key=args.distinct_id_key,
        historical_migration=args.historical,
    )


# Events handed on between two flushes: well under the SDK's span queue (2,048)
# and the posthog client's queue, so a fast back-fill does not overflow them.
_CHUNK = 500


def run(args: argparse.Namespace) -> int:
    """Back-fill the log, flush, print what was delivered and what was not."""
    if args.target == "parquet":
        from . import export_parquet

        return export_parquet.run(args)
    events = iter(open_source(args))  # a missing file or a bad date fails before any setup
    first = next(events, None)
    try:  # a missing extra shows at the import (otel) or at construction (posthog)
        exporter = _otel_exporter(args) if args.target == "otel" else _posthog_exporter(args)
    except ImportError as exc:
        raise CliError(str(exc)) from None
    count = 0
    flushing = True
    for event in events if first is None else itertools.chain([first], events):
        exporter.export(event)
        count += 1
        if flushing and count % _CHUNK == 0:
            # A dead endpoint: stop waiting on it at every chunk; the final
            # shutdown still gets its --timeout, and the count says what was lost.
            flushing = exporter.flush(args.timeout)
    exporter.shutdown(args.timeout)
    line, ok = summary(args.target, count, exporter.stats, exporter.failures)
    print(line)
    return 0 if ok else 1


def summary(
    target: str, count: int, stats: dict[str, int | None], failures: dict[str, int]
) -> tuple[str, bool]:
    """The result line of a back-fill, and whether everything was delivered."""
    head = f"exported {count} llm_usage events to {target}"
    if target == "posthog":
        total = (stats["handed"] or 0) + (stats["dropped"] or 0)
        head += f" as {total} $ai_generation events"
        delivered = stats["sent"] or 0
    else:
        total = count
        delivered = min(stats["sent"] or 0, stats.get("metrics_covered") or 0)
    why = []
    if stats["failed"]:
        why.append(f"{stats['failed']} failed")
    if stats["dropped"]:
        why.append(f"{stats['dropped']} dropped")
    if stats.get("pending"):
        why.append(f"{stats['pending']} still pending when --timeout ran out")
    if stats.get("metric_exports_failed"):
        exports = (stats["metric_exports_failed"] or 0) + (stats["metric_exports_sent"] or 0)
        why.append(f"{stats['metric_exports_failed']} of {exports} metrics exports failed")
    if failures:
        why.append("; ".join(sorted(failures)))
    line = f"{head}: delivered {delivered}, not delivered {total - delivered}"
    if total - delivered:
        line += f" ({'; '.join(why) or 'the endpoint did not confirm them'})"
    return line, delivered == total
