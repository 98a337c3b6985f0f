"""The CEMM monitor: every ``[upstream] health_interval`` seconds (sooner when the proxy
saw a connection to the CEMM fail), where the CEMM is and whether it answers.

The job itself is :class:`gateway.upstream.monitor.UpstreamMonitor` (its docstring has the
rules: following the CEMM by MAC, clock drift); this task only runs it for the gateway's
lifetime. What it learns goes to the proxy state (where requests go) and to the status
(the dashboard, ``/healthz``, ``/metrics``, the 502/503 page).
"""

from __future__ import annotations

from gateway.upstream.monitor import UpstreamMonitor


async def run(monitor: UpstreamMonitor) -> None:
    """Check, wait, repeat - until cancelled (the monitor survives its own failures)."""
    await monitor.run()
