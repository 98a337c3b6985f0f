"""The background task that knows the CEMM: where it is, whether it answers, its clock.

Every ``[upstream] health_interval`` seconds, and at once when the proxy reports that a
connection to the CEMM failed (``ProxyState.status``, read-only here), the monitor checks
both ports of the address the proxy forwards to
(:class:`~gateway.upstream.health.HealthChecker`) and records the result in
:class:`~gateway.upstream.health.UpstreamHealth`, which the dashboard (``status()``),
``/healthz``, ``/metrics`` and the 502/503 page read.

Following the CEMM by MAC (``[upstream] mac``)
----------------------------------------------
The rule: **nothing is forwarded to an address whose device has not confirmed the MAC**.

- At start the proxy's target is empty (``ProxyState.upstream.host = ""``): requests for
  the CEMM get a 503 page that says the gateway is looking for it. The monitor searches
  (:class:`~gateway.upstream.discovery.Discovery`) and points the proxy at the address
  only once ``GET /api/v1/public/cemm`` there reported the configured MAC.
- Every later check asks the same question again. If the address stops answering, answers
  without the CEMM's document, or a different MAC answers, the target is emptied *first*
  and then the search runs: during the search nothing is forwarded anywhere.
- The proxy checks each new upstream connection at the link layer as well (see
  ``addons/upstream_identity.py``): a handshake completed by another MAC is cut before a
  byte is sent, and empties the target; the monitor notices at once.
- A change of address is logged and written to the audit log (``upstream.address_change``);
  so is a foreign device found where the CEMM was (``upstream.foreign_device``, once per
  device).
- The subnet probe runs at most every ``health_interval`` seconds, doubling up to a minute
  while the CEMM stays missing, so a switched-off CEMM does not mean a sweep of the LAN
  every few seconds.

With ``[upstream] host`` alone the address is fixed: the monitor checks and reports, but
never re-points the proxy.

Clock drift
-----------
Each confirmed check yields a drift estimate (:func:`~gateway.upstream.health.estimate_drift`).
Above ``[upstream] clock_drift_threshold`` the dashboard shows a warning, and the log and
the audit log (``upstream.clock_drift``) get one entry per episode, not one per check; the
end of an episode is logged and audited too (``upstream.clock_drift_ok``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.proxy.state import ProxyState
from gateway.services import audit
from gateway.settings import UpstreamSettings
from gateway.store.db import transaction
from gateway.system import commands
from gateway.system.limits import OUT_OF_RESOURCES
from gateway.upstream.discovery import Discovery
from gateway.upstream.health import (
    ApiCheck,
    DriftEstimator,
    DriftWatch,
    HealthChecker,
    PortCheck,
    PortHealth,
    UpstreamHealth,
)
from gateway.waiting import wait_at_most

logger = logging.getLogger("cemm_gateway.upstream")

MAX_PROBE_BACKOFF = 60.0
CHECK_TIMEOUT = 3.0
"""At most this long for one check (a CEMM on the LAN answers in milliseconds)."""
AUDIT_ACTOR = "system"


class Checker(Protocol):
    async def check_api(self, address: str) -> ApiCheck: ...
    async def check_websocket(self, address: str) -> PortCheck: ...


class UpstreamMonitor:
    def __init__(
        self,
        settings: UpstreamSettings,
        state: ProxyState,
        *,
        conn: sqlite3.Connection | None = None,
        record_audit: Callable[..., None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        checker: Checker | None = None,
        discovery: Discovery | None = None,
        runner: commands.Runner = commands.run,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._jitter = jitter
        self.state = state
        self.conn = conn
        # Given by the app: audit entries written off the event loop (never waited for).
        self._record_audit = record_audit
        self.clock = clock
        self.mac = settings.mac
        self.interval = settings.health_interval
        # At most this long, returning early on the proxy's news (tests give a fake).
        self._sleep = sleep or functools.partial(wait_at_most, state.cemm_news)
        self._monotonic = monotonic
        self.checker: Checker = checker or HealthChecker(
            http_port=settings.http_port,
            ws_port=settings.ws_port,
            timeout=min(settings.connect_timeout, CHECK_TIMEOUT),
            clock=clock,
        )
        self.discovery = discovery or Discovery(
            mac=settings.mac,
            http_port=settings.http_port,
            check=self.checker.check_api,
            probe_subnet=settings.probe_subnet,
            runner=runner,
        )
        self.drift = DriftWatch(settings.clock_drift_threshold)
        self.drift_estimator = DriftEstimator()
        self.health = UpstreamHealth(
            http=PortHealth(settings.http_port),
            ws=PortHealth(settings.ws_port),
            mac=settings.mac,
            clock_drift_threshold=settings.clock_drift_threshold,
        )
        state.set_cemm(self.health)
        state.set_upstream_mac(settings.mac)
        if settings.mac:
            # Nothing goes anywhere until the device has said who it is.
            state.set_upstream_host("")
        else:
            self.health.address = settings.host
        self._probe_backoff = self.interval
        self._next_probe_at = 0.0
        self._seen_failures: dict[int, float | None] = {}
        self._announced: set[tuple[str, str]] = set()
        self._missing_logged = False
        self._neighbour_error_logged = False
        self._out_of_resources_logged = False

    # -- the loop ---------------------------------------------------------------------
    async def run(self) -> None:
        """Check, wait, repeat - until cancelled."""
        while True:
            await self.check_logged()
            await self.wait_for_next_check()

    async def check_logged(self) -> None:
        """One check; what goes wrong in it is logged, never raised, so the loop carries on.

        A machine out of descriptors or memory (at the open-file limit a check cannot open
        its socket, or even a module file) is one line until a check gets through again,
        not a traceback per check."""
        try:
            await self.check_once()
        except Exception as error:  # not CancelledError (a BaseException): that ends run()
            if not (isinstance(error, OSError) and error.errno in OUT_OF_RESOURCES):
                logger.exception("checking the CEMM failed; the monitor carries on")
            elif not self._out_of_resources_logged:
                self._out_of_resources_logged = True
                logger.warning(
                    "could not check the CEMM: the gateway has no resources left (%s); "
                    "the monitor tries again at every check",
                    error.strerror or error,
                )
        else:
            self._out_of_resources_logged = False

    async def wait_for_next_check(self) -> None:
        """Wait until the next check is due, or the proxy gives a reason to look now.

        Up to a second of jitter is added, so that checks read the CEMM's whole-second
        clock at different points of its second and the drift estimate can narrow. Between
        checks the monitor sleeps until the proxy has news (``ProxyState.cemm_news``): it
        does not wake to look for nothing.
        """
        deadline = self._monotonic() + self.interval + self._jitter()
        while (remaining := deadline - self._monotonic()) > 0:
            # Cleared before looking: news from now on ends the wait (no await between).
            self.state.cemm_news.clear()
            if self._reason_to_look():
                return
            await self._sleep(remaining)

    def _reason_to_look(self) -> bool:
        if self.mac and not self.state.upstream.host and self.health.address is not None:
            return True  # the proxy withdrew the target (a foreign MAC at the link layer)
        if self.health.address is None:
            return False
        for port in (self.settings.http_port, self.settings.ws_port):
            status = self.state.status.ports.get(port)
            failing = status.failing_since if status is not None else None
            if failing is not None and failing != self._seen_failures.get(port):
                self._seen_failures[port] = failing
                return True
        return False

    # -- one check --------------------------------------------------------------------
    async def check_once(self) -> None:
        health = self.health
        health.checks += 1
        health.checked_at = self.clock.now()
        if self.mac:
            await self._check_by_mac()
        else:
            address = self.settings.host
            api, ws = await asyncio.gather(
                self.checker.check_api(address), self.checker.check_websocket(address)
            )
            self._record(api, ws)
            if api.identity is not None and api.identity.mac:
                health.reported_mac = api.identity.mac

    async def _check_by_mac(self) -> None:
        health = self.health
        address = self.state.upstream.host
        if not address and health.address is not None:
            self._lose(
                f"a device with another MAC completed a connection to {health.address}",
                foreign=None,
            )
        skip: list[str] = []
        if address:
            # Identity first: a device that is not the CEMM gets this one request, nothing else.
            api = await self.checker.check_api(address)
            if api.confirms(self.mac):
                self._record(api, await self.checker.check_websocket(address))
                health.confirmed_at = self.clock.now()
                return
            reported = api.identity.mac if api.ok and api.identity is not None else None
            if reported is not None:
                self._foreign(address, reported)
                reason = f"a device with MAC {reported} now answers at {address}"
            elif api.answered:
                reason = f"{address} {api.error or 'did not confirm the MAC'}"
                self._record(api, None)
            else:
                reason = f"{address} does not answer: {api.error}"
                self._record(api, None)
                skip.append(address)  # asking again now would only wait out the timeout
            self._lose(reason, foreign=(address, reported) if reported else None)
        found = await self._search(skip)
        if found is not None:
            ws = await self.checker.check_websocket(found.address)
            self._record(found, ws)

    # -- following by MAC -------------------------------------------------------------
    def _lose(self, reason: str, *, foreign: tuple[str, str] | None) -> None:
        """Forward nothing from now on, until the CEMM is confirmed again."""
        self.state.set_upstream_host("")
        health = self.health
        if health.address is not None:
            health.last_address = health.address
            health.lost_since = self.clock.now()
            logger.warning(
                "not forwarding to the CEMM (MAC %s) any more: %s; looking for it",
                self.mac,
                reason,
            )
        health.address = None
        health.lost_reason = reason
        health.searching = True
        if foreign is not None:
            health.foreign_device = foreign

    async def _search(self, skip: list[str]) -> ApiCheck | None:
        health = self.health
        health.searching = True
        hints = [a for a in (health.last_address, self.settings.host) if a]
        allow_probe = self._monotonic() >= self._next_probe_at
        result = await self.discovery.find(hints, allow_probe=allow_probe, skip=skip)
        if result.probed:
            self._next_probe_at = self._monotonic() + self._probe_backoff
            self._probe_backoff = min(self._probe_backoff * 2, MAX_PROBE_BACKOFF)
        if result.neighbour_error and not self._neighbour_error_logged:
            self._neighbour_error_logged = True
            logger.warning("cannot read the neighbour table: %s", result.neighbour_error)
        for address, mac in result.foreign:
            self._foreign(address, mac)
        if result.found is None:
            if not self._missing_logged:
                self._missing_logged = True
                asked = ", ".join(result.asked) or "no candidates"
                logger.warning(
                    "the CEMM (MAC %s) was not found (asked: %s%s); forwarding nothing until it is",
                    self.mac,
                    asked,
                    "; probed " + self.settings.probe_subnet if result.probed else "",
                )
            return None
        self._point(result.found)
        return result.found

    def _point(self, check: ApiCheck) -> None:
        health = self.health
        address = check.address
        # Before the first find, a configured host counts as where the CEMM was.
        previous = health.last_address or self.settings.host or None
        now = self.clock.now()
        health.address = address
        health.last_address = address
        health.confirmed_at = now
        health.lost_since = health.lost_reason = None
        health.searching = False
        health.foreign_device = None
        self._probe_backoff = self.interval
        self._next_probe_at = 0.0
        self._missing_logged = False
        if previous and previous != address:
            health.address_changes += 1
            health.last_change_at = now
            health.http.forget()
            health.ws.forget()
            self.drift_estimator.reset()
            # What the proxy saw at the old address says nothing about the new one.
            self.state.forget_ports()
            self._seen_failures.clear()
            logger.warning(
                "the CEMM (MAC %s) moved from %s to %s; forwarding there",
                self.mac,
                previous,
                address,
            )
            self._audit("upstream.address_change", old=previous, new=address, mac=self.mac)
        else:
            logger.info("found the CEMM (MAC %s) at %s; forwarding there", self.mac, address)
        self.state.set_upstream_host(address)

    def _foreign(self, address: str, mac: str) -> None:
        if address in (self.health.last_address, self.health.address, self.settings.host):
            self.health.foreign_device = (address, mac)
        key = (address, mac)
        if key in self._announced:
            return
        if len(self._announced) > 256:
            self._announced.clear()
        self._announced.add(key)
        logger.warning(
            "a device with MAC %s answers at %s, not the CEMM (MAC %s): nothing is forwarded to it",
            mac,
            address,
            self.mac,
        )
        self._audit("upstream.foreign_device", address=address, reported_mac=mac, mac=self.mac)

    # -- recording --------------------------------------------------------------------
    def _record(self, api: ApiCheck, ws: PortCheck | None) -> None:
        """Record a check; ``ws`` is None when the WebSocket port was not checked."""
        health = self.health
        now = self.clock.now()
        health.http.record(
            ok=api.answered, now=now, response_time=api.response_time, error=api.error
        )
        if ws is not None:
            health.ws.record(
                ok=ws.answered, now=now, response_time=ws.response_time, error=ws.error
            )
        if api.identity is not None:
            health.reported_mac = api.identity.mac
            health.identity = {
                "name": api.identity.name,
                "version": api.identity.version,
                "local_ip": api.identity.local_ip,
            }
        if api.drift_bounds is not None:
            self._record_drift(self.drift_estimator.add(api.drift_bounds))
        elif api.drift is not None:
            self._record_drift(api.drift)

    def _record_drift(self, drift: float) -> None:
        health = self.health
        change = self.drift.update(drift)
        health.clock_drift = drift
        health.clock_drift_warning = self.drift.warning
        threshold = self.drift.threshold
        if change == "began":
            direction = "ahead of" if drift > 0 else "behind"
            logger.warning(
                "the CEMM's clock is %.1f s %s the gateway's (threshold %g s); a wrong clock "
                "can lose data: check the CEMM's time server (NTP)",
                abs(drift),
                direction,
                threshold,
            )
            self._audit("upstream.clock_drift", drift=round(drift, 1), threshold=threshold)
        elif change == "ended":
            logger.info("the CEMM's clock is right again (drift %.1f s)", drift)
            self._audit("upstream.clock_drift_ok", drift=round(drift, 1), threshold=threshold)

    def _audit(self, event: str, **detail: Any) -> None:
        if self._record_audit is not None:
            self._record_audit(AUDIT_ACTOR, event, **detail)
            return
        if self.conn is None:
            return
        try:
            with transaction(self.conn):
                audit.record(self.conn, AUDIT_ACTOR, event, clock=self.clock, **detail)
        except sqlite3.Error as error:
            logger.warning("could not write %s to the audit log: %s", event, error)

    # -- what others read -------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return self.health.as_dict()

    def facts(self) -> dict[str, str]:
        """The dashboard's lines about the CEMM (``status()["cemm"]``), as plain text."""
        health = self.health
        facts: dict[str, str] = {}
        if health.address is not None:
            confirmed = " (MAC confirmed)" if self.mac else ""
            facts["address"] = f"{health.address}{confirmed}"
        else:
            facts["address"] = "not known: " + health.unavailable_text()
        if self.mac:
            facts["mac"] = self.mac
        elif health.reported_mac:
            facts["mac"] = f"{health.reported_mac} (as the CEMM reports it)"
        for name, port in (("web port check", health.http), ("WebSocket port check", health.ws)):
            if port.up is None:
                continue
            if port.up:
                took = f", {port.response_time * 1000:.0f} ms" if port.response_time else ""
                facts[name] = f"port {port.port} answers{took}"
            else:
                facts[name] = health.failing_text(port.port, port.failing_since or 0.0) + (
                    f" ({port.error})" if port.error else ""
                )
        if health.clock_drift is not None:
            facts["clock drift"] = f"{health.clock_drift:+.1f} s" + (
                f" - above {health.clock_drift_threshold:g} s" if health.clock_drift_warning else ""
            )
        if health.address_changes:
            facts["address changes"] = str(health.address_changes)
        warnings = health.warnings()
        if warnings:
            facts["warning"] = " ".join(warnings)
        return facts

    def describe(self) -> str | None:
        """The sentence for the 502/503 page, or None when nothing is known to be wrong."""
        health = self.health
        if self.mac and not self.state.upstream.host:
            return health.unavailable_text()
        failing: list[tuple[float, int]] = []
        for port in (self.settings.http_port, self.settings.ws_port):
            proxy = self.state.status.ports.get(port)
            if proxy is not None and proxy.failing_since is not None:
                failing.append((proxy.failing_since, port))
        for port_health in (health.http, health.ws):
            if port_health.failing_since is not None:
                failing.append((port_health.failing_since, port_health.port))
        if not failing:
            return None
        since, port = min(failing)
        return (
            health.failing_text(port, since) + " Check that it is switched on and connected "
            "to the network; the page will work again as soon as it answers."
        )
