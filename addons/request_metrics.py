"""The request-duration histogram of ``/metrics`` (``cemm_gateway_request_duration_seconds``).

When a request ends (``response``, or ``error`` if it got none) its duration goes into
:data:`gateway.metrics.REQUEST_DURATIONS`, labelled with the gateway's port the client
connected to and the outcome:

- ``denied``: the gateway answered instead of forwarding (allowlist, login, limits: the
  request carries :data:`addons.base.DENIED`);
- ``error``: no response (the CEMM did not answer, the client went away) or a 5xx;
- ``ok``: any other response, from the CEMM or from the gateway's own pages.

The duration starts when the request's head arrived (the request log's start time, else
mitmproxy's ``timestamp_start``) and ends when the response is ready to be sent; for a
WebSocket it is its handshake. Measuring only: nothing here changes a request, and it runs
on every request, so it does one lookup and one bisect (``DurationHistogram.observe``).
"""

from __future__ import annotations

import logging
import time

from mitmproxy import http

from addons.base import DENIED
from addons.request_log import STARTED
from gateway.metrics import REQUEST_DURATIONS, DurationHistogram

logger = logging.getLogger("cemm_gateway.proxy")

OBSERVED = "cemm_gateway.duration_observed"


class RequestMetrics:
    def __init__(self, histogram: DurationHistogram = REQUEST_DURATIONS) -> None:
        self.histogram = histogram

    def response(self, flow: http.HTTPFlow) -> None:
        self._observe(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._observe(flow)

    def _observe(self, flow: http.HTTPFlow) -> None:
        metadata = flow.metadata
        if OBSERVED in metadata:  # an error after the response: counted once
            return
        metadata[OBSERVED] = True
        try:
            started = metadata.get(STARTED)
            if isinstance(started, float):
                seconds = time.monotonic() - started
            else:
                seconds = time.time() - flow.request.timestamp_start
            response = flow.response
            if metadata.get(DENIED):
                outcome = "denied"
            elif response is None or response.status_code >= 500:
                outcome = "error"
            else:
                outcome = "ok"
            sockname = flow.client_conn.sockname
            self.histogram.observe(sockname[1] if sockname else 0, outcome, max(seconds, 0.0))
        except Exception:  # pragma: no cover - measuring must never stop a request
            logger.exception("observing a request's duration failed")
