"""Metrics: /metrics in Prometheus text format, a registry per app; the requests counted as the request log
(app/middleware/request_log.py) hands them over, and the gateway's state read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from app.middleware.request_log import RequestStats

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class GatewayCollector:
    """Gauges and counters read from the running gateway at scrape time."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        state = self.read()
        yield GaugeMetricFamily("codex_wrapper_queue_depth", "Turns waiting for a Codex slot", value=state["waiting"])
        yield GaugeMetricFamily("codex_wrapper_turns_in_flight", "Turns running in Codex", value=state["running"])
        yield GaugeMetricFamily(
            "codex_wrapper_background_responses",
            "Background responses this instance runs or queues",
            value=state.get("background", 0),
        )
        yield CounterMetricFamily(
            "codex_wrapper_codex_restarts", "Codex app-server worker restarts", value=state["restarts"]
        )
        errors = CounterMetricFamily("codex_wrapper_upstream_errors", "Failed turns by kind", labels=["kind"])
        for kind, count in sorted(state["failures"].items()):
            errors.add_metric([kind], count)
        yield errors
        yield GaugeMetricFamily(
            "codex_wrapper_store_up", "1 if the response store answered its last call, else 0", value=state["store_up"]
        )
        yield CounterMetricFamily(
            "codex_wrapper_store_write_failures", "Responses answered but not stored (store unavailable)",
            value=state["store_write_failures"],
        )  # fmt: skip
        yield CounterMetricFamily(
            "codex_wrapper_rate_limit_storage_errors", "Requests let through because the rate-limit storage failed",
            value=state["rate_limit_storage_errors"],
        )  # fmt: skip
        yield from plan_metrics(state.get("plan"))


def plan_metrics(plan: dict[str, Any] | None) -> Iterator[Metric]:
    """The ChatGPT plan's windows Codex last reported (app/codex/plan_limits.py), and refusals while one is used up."""
    used = GaugeMetricFamily("codex_wrapper_plan_used_percent", "Percent of the plan's window used", labels=["window"])
    reset = GaugeMetricFamily(
        "codex_wrapper_plan_reset_seconds", "Seconds until the plan's window resets", labels=["window"]
    )
    for name, (percent, seconds) in sorted(((plan or {}).get("windows") or {}).items()):
        used.add_metric([name], percent)
        if seconds is not None:
            reset.add_metric([name], seconds)
    yield used
    yield reset
    yield GaugeMetricFamily(
        "codex_wrapper_plan_limit_reached", "1 while the plan's usage limit is known to be reached",
        value=int(bool((plan or {}).get("reached"))),
    )  # fmt: skip
    yield CounterMetricFamily(
        "codex_wrapper_plan_limit_refusals", "Requests refused without a turn because the plan's limit is reached",
        value=(plan or {}).get("refusals", 0),
    )  # fmt: skip


class Metrics:
    def __init__(self, read_state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "codex_wrapper_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "codex_wrapper_request_seconds", "Request duration", ["endpoint"], buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )  # fmt: skip
        self.ttft = Histogram(
            "codex_wrapper_time_to_first_token_seconds", "Time until the first byte of the answer", ["endpoint"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.registry.register(GatewayCollector(read_state))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, stats: RequestStats) -> None:
        self.requests.labels(stats.endpoint, str(stats.status)).inc()
        if stats.total_ms is not None:
            self.latency.labels(stats.endpoint).observe(stats.total_ms / 1000)
        if stats.ttft_ms is not None and stats.model is not None:
            self.ttft.labels(stats.endpoint).observe(stats.ttft_ms / 1000)
