"""The server-wide metrics registry (docs/operations.md "Metrics"), exposed at `GET /metrics`.

One prometheus-client registry per app. Every surface records into it: the request series of every
front door (`stigmer_http_*`, by surface and route template), semvec's own series (semvec §5.51), the
store writers' group sizes and commit latency, and gauges read at scrape time (`on_scrape`).

Requests are counted by `RequestStats`, a collector of plain dicts, not prometheus-client's labelled
children: on the key fast path their locks and per-bucket loop cost 2.5 µs a request, this about
0.4 µs. Its figures are only touched on the event loop (requests and scrapes both run there); the writer
threads record into prometheus-client's thread-safe histograms.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Awaitable, Callable, Iterator

import prometheus_client
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

prometheus_client.disable_created_metrics()  # no `_created` series: they double the exposition for no use here

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # semvec §5.51 names this exact type
# Key reads take well under a millisecond: finer low buckets than Prometheus' defaults.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # mutations per commit (MAX_GROUP is 512)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class RequestStats(Collector):
    """A request counter `<name>_total{*labels, status}` and a duration histogram `<duration>{*labels}`."""

    def __init__(self, name: str, duration: str, labels: tuple[str, ...], buckets: tuple[float, ...],
                 what: str):
        self.name, self.duration, self.labels, self.buckets, self.what = name, duration, labels, buckets, what
        self._counts: dict[tuple, int] = {}
        self._histograms: dict[tuple, list] = {}  # -> [count per bucket (not cumulative)..., +Inf, sum]

    def observe(self, key: tuple, status: int, seconds: float) -> None:
        k = (*key, status)
        self._counts[k] = self._counts.get(k, 0) + 1
        h = self._histograms.get(key)
        if h is None:
            h = self._histograms[key] = [0] * (len(self.buckets) + 1) + [0.0]
        h[bisect_left(self.buckets, seconds)] += 1
        h[-1] += seconds

    def totals(self) -> tuple[int, list[int], float]:
        """Every request so far, all labels together: (count, cumulative count at each bucket edge with +Inf
        last, seconds summed). What the console's Health view samples (GET /v1/admin/metrics)."""
        per_edge = [0] * (len(self.buckets) + 1)
        seconds = 0.0
        for h in self._histograms.values():
            for i, n in enumerate(h[:-1]):
                per_edge[i] += n
            seconds += h[-1]
        running, cumulative = 0, []
        for n in per_edge:
            running += n
            cumulative.append(running)
        return running, cumulative, seconds

    def collect(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(self.name, f"Requests served, by {self.what} and status.",
                                      labels=(*self.labels, "status"))
        for (*key, status), n in sorted(self._counts.items()):
            counter.add_metric([*key, str(status)], n)
        yield counter
        histogram = HistogramMetricFamily(self.duration, f"Request duration in seconds, by {self.what}.",
                                          labels=self.labels)
        edges = [repr(float(b)) for b in self.buckets] + ["+Inf"]
        for key, h in sorted(self._histograms.items()):
            running, cumulative = 0, []
            for edge, n in zip(edges, h):
                running += n
                cumulative.append((edge, running))
            histogram.add_metric(list(key), cumulative, h[-1])
        yield histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http = RequestStats("stigmer_http_requests", "stigmer_http_request_duration_seconds",
                                 ("surface", "route", "method"), REQUEST_BUCKETS, "surface, route template, method")
        self.registry.register(self.http)
        self.group_size = Histogram("stigmer_store_commit_group_size", "Mutations committed together by a store writer.",
                                    buckets=GROUP_BUCKETS, registry=self.registry)
        self.commit_seconds = Histogram("stigmer_store_commit_seconds",
                                        "Time a store writer took to run and commit one group.",
                                        buckets=COMMIT_BUCKETS, registry=self.registry)
        self._scrape_hooks: list[Callable[[], Awaitable[None]]] = []
        self._streams = self.gauge("stigmer_streams_open", "Open streams (SSE watches), by surface.", ("surface",))
        self._stream_counts: list[tuple[str, Callable[[], int]]] = []
        self.on_scrape(self._count_streams)

    def streams(self, surface: str, count: Callable[[], int]) -> None:
        """A surface's open streams, counted by `count()` at scrape time (summed per surface)."""
        self._stream_counts.append((surface, count))

    async def _count_streams(self) -> None:
        totals: dict[str, int] = {}
        for surface, count in self._stream_counts:
            totals[surface] = totals.get(surface, 0) + count()
        for surface, n in totals.items():
            self._streams.labels(surface).set(n)

    def commit_group(self, size: int, seconds: float) -> None:
        """Called by a store writer's thread after each group."""
        self.group_size.observe(size)
        self.commit_seconds.observe(seconds)

    def gauge(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, help, labels, registry=self.registry)

    def on_scrape(self, hook: Callable[[], Awaitable[None]]) -> None:
        """`hook` sets gauges from the engine (the store included) before each exposition."""
        self._scrape_hooks.append(hook)

    async def exposition(self) -> bytes:
        for hook in self._scrape_hooks:
            await hook()
        return text_format(self.registry)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def text_format(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (0.0.4) of the registry, with each sample's labels in the order its series
    declares them. prometheus-client's `generate_latest` sorts them; semvec's series are matched as text by
    its clients, as `semvec_requests_total{method=…,endpoint=…,status=…}` (§5.51), so the order is kept."""
    out = []
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        out.append(f"# HELP {name} {family.documentation}\n# TYPE {name} {family.type}\n")
        for sample in family.samples:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels.items())
            out.append(f"{sample.name}{{{labels}}} {floatToGoString(sample.value)}\n" if labels
                       else f"{sample.name} {floatToGoString(sample.value)}\n")
    return "".join(out).encode()
