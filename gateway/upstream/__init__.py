"""Knowing the CEMM: where it is (by MAC), whether it answers, and whether its clock is right.

- :mod:`gateway.upstream.discovery`: the neighbour table, the optional subnet probe, and the
  identity the CEMM reports (``GET /api/v1/public/cemm``).
- :mod:`gateway.upstream.health`: one check of both ports, the clock drift estimate, and
  the plain-data report (:class:`~gateway.upstream.health.UpstreamHealth`) the dashboard,
  ``/healthz``, ``/metrics`` and the 502/503 page read.
- :mod:`gateway.upstream.monitor`: the background task that ties them together and points
  the proxy (``ProxyState.upstream.host``) at the confirmed CEMM, or at nothing.
"""
