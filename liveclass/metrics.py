"""Prometheus metrics at /metrics: the process, HTTP requests, rooms, people and the media plane.

prometheus-client renders the exposition format. Every label is bounded: roles and states, sources
(camera, screen, …), slot names (a fixed layout), layers, HTTP routes (the route table's patterns, not
the paths asked for), methods and statuses; never a peer, a person or a session. Rates are counters
(Prometheus takes `rate()`); the live state's spread (loss, round-trip times) is a gauge histogram read when
scraped, so nothing on the media path pays for metrics. Served to loopback addresses, or to anyone
presenting LIVECLASS_METRICS_TOKEN as a bearer token (a scraper on another machine).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Iterable

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily

from liveclass.appkeys import SETTINGS
from liveclass.errors import ApiError
from liveclass.live import LIVE_ROOMS
from media.engine import MediaEngine

_LOOPBACK = ("127.", "::1")
LOSS_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
RTT_BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # a path no route answers (404s): one label, whatever was asked


def _gauge_histogram(
    name: str, documentation: str, values: Iterable[float], buckets: tuple[float, ...]
) -> GaugeHistogramMetricFamily:
    """How many of `values` fall at or below each bound, now (cumulative, as Prometheus histograms are)."""
    values = list(values)
    counts = [(str(bound), sum(1 for v in values if v <= bound)) for bound in buckets]
    return GaugeHistogramMetricFamily(
        name, documentation, buckets=[*counts, ("+Inf", len(values))], gsum_value=sum(values)
    )


class LiveCollector:
    def __init__(self, app: web.Application):
        self.app = app

    def collect(self):
        live = self.app[LIVE_ROOMS]
        yield GaugeMetricFamily("liveclass_rooms", "Live rooms on this node", value=live.load()["rooms"])
        # A leak shows here first (a soak watches it stay flat).
        yield GaugeMetricFamily(
            "liveclass_asyncio_tasks", "Tasks of the node's event loop", value=len(asyncio.all_tasks())
        )
        people = GaugeMetricFamily("liveclass_participants", "People in live rooms", labels=["role", "state"])
        for (role, state), n in sorted(live.census().items()):
            people.add_metric([role, state], n)
        yield people
        engine = live.media_engine
        if not isinstance(engine, MediaEngine):  # None: a server without media
            return
        yield CounterMetricFamily(
            "liveclass_media_layer_selection_cpu_seconds",
            "CPU time spent choosing each subscriber's layers (weak links)",
            value=engine.selection_seconds,
        )
        totals = engine.totals()
        received = CounterMetricFamily(
            "liveclass_media_received_bytes", "Bytes received from publishers, by source", labels=["source"]
        )
        for source, count in sorted(totals["received_bytes"].items()):
            received.add_metric([source], count)
        sent = CounterMetricFamily(
            "liveclass_media_sent_bytes", "Bytes forwarded to subscribers, by slot", labels=["slot"]
        )
        for slot, count in sorted(totals["sent_bytes"].items()):
            sent.add_metric([slot], count)
        yield from (received, sent)

        stats = engine.stats()
        tracks = GaugeMetricFamily("liveclass_media_tracks", "Published tracks now, by source", labels=["source"])
        by_source: dict[str, int] = {}
        for track in stats["tracks"].values():
            by_source[track["source"]] = by_source.get(track["source"], 0) + 1
        for source, n in sorted(by_source.items()):
            tracks.add_metric([source], n)
        slots = [slot for subscriber in stats["subscribers"].values() for slot in subscriber.values()]
        negotiated = GaugeMetricFamily(
            "liveclass_media_slots", "Subscribers' slots now (carrying a source or idle), by kind", labels=["kind"]
        )
        for kind in ("audio", "video"):
            negotiated.add_metric([kind], sum(1 for slot in slots if slot["kind"] == kind))
        layers = GaugeMetricFamily(
            "liveclass_media_video_slots",
            "Subscribers' video slots carrying a source now, by the layer their link gets (high, low, off: paused)",
            labels=["layer"],
        )
        by_layer: dict[str, int] = {}
        for slot in slots:
            if slot["kind"] == "video" and slot["source"] is not None:
                by_layer[slot["layer"]] = by_layer.get(slot["layer"], 0) + 1
        for layer, n in sorted(by_layer.items()):
            layers.add_metric([layer], n)
        yield from (tracks, negotiated, layers)
        yield _gauge_histogram(
            "liveclass_media_track_loss_ratio",
            "Published tracks by the loss from their publisher (0–1), now",
            (t["loss"] for t in stats["tracks"].values()),
            LOSS_BUCKETS,
        )
        carrying = [slot for slot in slots if slot["source"] is not None]
        yield _gauge_histogram(
            "liveclass_media_slot_loss_ratio",
            "Subscribers' slots by the loss their receiver reports (0–1), now",
            (s["loss"] for s in carrying),
            LOSS_BUCKETS,
        )
        yield _gauge_histogram(
            "liveclass_media_slot_rtt_seconds",
            "Subscribers' slots by round-trip time, now",
            (s["rtt"] for s in carrying if s["rtt"] is not None),
            RTT_BUCKETS,
        )


def _route_label(request: web.Request) -> str:
    """The route's pattern (/api/v1/sessions/{session_id}/join), never the path asked for: bounded."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None or getattr(route, "status", None) == 404:
        return UNMATCHED
    return resource.canonical


def setup_metrics(app: web.Application) -> None:
    registry = CollectorRegistry()
    registry.register(LiveCollector(app))
    for collector in (ProcessCollector, PlatformCollector, GCCollector):  # CPU, memory, open files, GC
        collector(registry=registry)
    requests = Histogram(
        "liveclass_http_request_duration_seconds",
        "HTTP requests by route, method and status",
        ["route", "method", "status"],
        buckets=HTTP_BUCKETS,
        registry=registry,
    )

    @web.middleware
    async def measured(request: web.Request, handler):
        began = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            requests.labels(_route_label(request), request.method, str(status)).observe(time.perf_counter() - began)

    app.middlewares.insert(0, measured)  # outermost: it sees the status every other middleware settled

    async def metrics(request: web.Request) -> web.Response:
        token = request.app[SETTINGS].metrics_token
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        # Through a reverse proxy the peer is loopback too: a forwarded request is not a local one.
        forwarded = "X-Forwarded-For" in request.headers or "Forwarded" in request.headers
        from_loopback = (request.remote or "").startswith(_LOOPBACK) and not forwarded
        if not (from_loopback or (token and hmac.compare_digest(presented, token))):
            raise ApiError(403, "forbidden", "Metrics are served to this machine, or with the metrics token.")
        return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")

    app.router.add_get("/metrics", metrics)
