"""Prometheus metrics at /metrics: rooms, people and the media plane, read at scrape time.

prometheus-client renders the exposition format; a custom collector reads the live state when scraped,
so nothing on the media path pays for metrics. Served to loopback addresses, or to anyone presenting
LIVECLASS_METRICS_TOKEN as a bearer token (a scraper on another machine).
"""
from __future__ import annotations

import asyncio
import hmac

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from liveclass.appkeys import SETTINGS
from liveclass.errors import ApiError
from liveclass.live import LIVE_ROOMS

_LOOPBACK = ("127.", "::1")


class LiveCollector:
    def __init__(self, app: web.Application):
        self.app = app

    def collect(self):
        live = self.app[LIVE_ROOMS]
        yield GaugeMetricFamily("liveclass_rooms", "Live rooms on this node", value=live.load()["rooms"])
        # A leak shows here first (a soak watches it stay flat).
        yield GaugeMetricFamily("liveclass_asyncio_tasks", "Tasks of the node's event loop",
                                value=len(asyncio.all_tasks()))
        people = GaugeMetricFamily("liveclass_participants", "People in live rooms", labels=["role", "state"])
        for (role, state), n in sorted(live.census().items()):
            people.add_metric([role, state], n)
        yield people
        if live.media_engine is None:
            return
        stats = live.media_engine.stats()
        yield CounterMetricFamily("liveclass_media_layer_selection_cpu_seconds",
                                  "CPU time spent choosing each subscriber's layers (weak links)",
                                  value=stats["selection_seconds"])
        received = CounterMetricFamily("liveclass_media_received_bytes", "Bytes received from publishers",
                                       labels=["peer", "source"])
        track_bitrate = GaugeMetricFamily("liveclass_media_track_bitrate_bps", "Bitrate of a published track",
                                          labels=["peer", "source"])
        track_loss = GaugeMetricFamily("liveclass_media_track_loss_ratio", "Packet loss from the publisher",
                                       labels=["peer", "source"])
        for key, track in stats["tracks"].items():
            peer, source = key.rsplit("/", 1)
            received.add_metric([peer, source], track["bytes"])
            track_bitrate.add_metric([peer, source], track["bitrate"])
            track_loss.add_metric([peer, source], track["loss"])
        sent = CounterMetricFamily("liveclass_media_sent_bytes", "Bytes forwarded to a subscriber slot",
                                   labels=["peer", "slot"])
        slot_bitrate = GaugeMetricFamily("liveclass_media_slot_bitrate_bps", "Bitrate forwarded to a slot",
                                         labels=["peer", "slot"])
        slot_loss = GaugeMetricFamily("liveclass_media_slot_loss_ratio", "Loss reported by the subscriber",
                                      labels=["peer", "slot"])
        slot_rtt = GaugeMetricFamily("liveclass_media_slot_rtt_seconds", "Round-trip time to the subscriber",
                                     labels=["peer", "slot"])
        for peer, slots in stats["subscribers"].items():
            for name, slot in slots.items():
                sent.add_metric([peer, name], slot["bytes"])
                slot_bitrate.add_metric([peer, name], slot["bitrate"])
                slot_loss.add_metric([peer, name], slot["loss"])
                if slot.get("rtt") is not None:
                    slot_rtt.add_metric([peer, name], slot["rtt"])
        yield from (received, track_bitrate, track_loss, sent, slot_bitrate, slot_loss, slot_rtt)


def setup_metrics(app: web.Application) -> None:
    registry = CollectorRegistry()
    registry.register(LiveCollector(app))

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
