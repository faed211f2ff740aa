"""``/metrics``: Prometheus text from :class:`~voicebot.ops.metrics.CallMetrics`.

``/health`` and ``/ready`` live in ``voicebot.server`` (they read the server's
own state); Kamailio's probe is SIP OPTIONS, which says the same as ``/ready``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from voicebot.ops.metrics import CallMetrics


def metrics_route(metrics: CallMetrics) -> web.RouteDef:
    async def metrics_page(_: web.Request) -> web.Response:
        from voicebot.ops.metrics import CONTENT_TYPE_LATEST

        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return web.get("/metrics", metrics_page)
