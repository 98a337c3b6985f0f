"""mitmproxy, embedded: a plain ``Master`` with only the addons the gateway needs.

Embedding ``Master`` is not a supported mitmproxy API, so everything that depends on its
internals stays in this module (and :mod:`gateway.proxy.errorpages`,
:mod:`gateway.proxy.ws_close`), pinned to the
version in ``pyproject.toml`` and covered by the integration tests:

- ``DumpMaster`` is not used: its ``ErrorCheck`` addon calls ``sys.exit(1)`` when anything
  is logged as an error at start-up, which would take the admin app down with it. The
  listeners' state is checked here instead, and a busy port becomes :class:`EngineError`.
- Only ``Core``, ``Proxyserver`` and ``NextLayer`` of mitmproxy's addons are loaded; every
  default addon added back costs throughput. TLS towards clients is the gateway's own
  addon (``addons/tls_termination.py``), not ``TlsConfig``, so versions, suites and
  certificate reloads are the gateway's to decide. ``Block`` is not loaded, so
  nothing is filtered silently: the gateway's own guard decides who may connect.
- Options: lazy upstream connections (an unauthenticated client opens none), HTTP/1.1 only
  towards clients, no HTTP/3, ``keep_host_header`` (the forwarding addon sets ``Host``),
  no raw TCP relay (``rawtcp``: a 101 that is not a WebSocket closes the client instead of
  becoming an unchecked tunnel), and ``confdir`` inside the data directory.
- Stopping: listeners are closed first (``server=False``), then open connections, then
  the master.
- The gateway's addons reach mitmproxy as **one** addon, :class:`AddonChain`, which calls
  them in order. mitmproxy dispatches every event (and an ``update`` after each flow event)
  to every registered addon through a traversal, a ``getattr`` and a context manager per
  addon: with a dozen addons that dispatch cost ~0.1 ms of CPU per request
  (``bench/results.md``, the ``gateway-unchained`` diagnostic).
- The master's :class:`HookTable` finds each event's handlers once instead of on every
  event, and sends no ``update`` when no addon has an ``update`` hook (none of the
  gateway's does): the same handlers, called in the same order with the same error
  handling, for about half of what mitmproxy's own dispatch costs per request.
- mitmproxy checks the type of every field of every request and response it makes, in
  Python's debug mode only (``if __debug__`` around ``MessageData.__post_init__`` in
  ``mitmproxy/http.py``): about 0.1 ms of CPU per request, more than all of the gateway's
  own checks together. The check is left out here, as running Python with ``-O`` would
  leave it out (:func:`_without_message_type_checks`); the gateway does not run with
  ``-O`` itself, which would also drop the asserts that guard mitmproxy's protocol state
  machines.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mitmproxy import exceptions, flow, hooks, http, options
from mitmproxy.addonmanager import AddonManager, safecall, traverse

from gateway.proxy import errorpages, ws_close
from gateway.proxy.mitm_addons import Master, core, next_layer, proxyserver

logger = logging.getLogger("cemm_gateway.proxy")


def _without_message_type_checks() -> None:
    """Make mitmproxy's messages without its debug-mode type check of their fields (the
    fields are filled by mitmproxy's own parsers, or by ``Request.make`` and
    ``Response.make``, which convert what they are given)."""
    http.MessageData.__post_init__ = _unchecked  # type: ignore[method-assign]


def _unchecked(self: http.MessageData) -> None:
    pass


_without_message_type_checks()


class EngineError(Exception):
    """The proxy could not start; the message says which listener and why."""


class AddonChain:
    """The gateway's addons as one mitmproxy addon: each event goes to them in order.

    For every hook that at least one member implements, the chain gets a method that calls
    exactly those members (awaiting the ones that return an awaitable), so an event no
    member handles costs mitmproxy one failed ``getattr``. The members see the same events,
    in the same order and with the same arguments, as if each were registered on its own.
    Like mitmproxy's dispatch, an exception in one member is logged and the next member
    still runs; the gateway's own hooks refuse instead of raising
    (:func:`addons.base.fail_closed`).
    """

    name = "cemm_gateway"

    def __init__(self, members: Sequence[Any]) -> None:
        # Not ``self.addons``: mitmproxy would traverse those and dispatch to them again.
        self.members = list(members)
        for event in hooks.all_hooks:
            handlers = [
                getattr(member, event)
                for member in self.members
                if callable(getattr(member, event, None))
            ]
            if handlers:
                setattr(self, event, _dispatcher(event, handlers))


def as_mitmproxy_addons(addons: Sequence[Any]) -> list[Any]:
    """What the engine registers with mitmproxy for the gateway's addons."""
    return [AddonChain(addons)]


def _dispatcher(event: str, handlers: list[Callable[..., Any]]) -> Callable[..., Any]:
    if any(inspect.iscoroutinefunction(handler) for handler in handlers):

        async def dispatch_async(*args: Any) -> None:
            for handler in handlers:
                try:
                    result = handler(*args)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("%s of %s failed", event, _owner(handler))

        return dispatch_async

    def dispatch(*args: Any) -> None:
        for handler in handlers:
            try:
                handler(*args)
            except Exception:
                logger.exception("%s of %s failed", event, _owner(handler))

    return dispatch


def _owner(handler: Callable[..., Any]) -> str:
    return type(getattr(handler, "__self__", handler)).__name__


class HookTable(AddonManager):
    """mitmproxy's addon manager with each event's handlers looked up once.

    mitmproxy's :meth:`AddonManager.trigger_event` walks every addon and its children,
    asks each for the event's method and enters a context manager per addon, for every
    event of every request; and :meth:`~AddonManager.handle_lifecycle` follows each flow
    event with an ``update`` event. Here the walk happens once per event name, on first
    use, and again after the chain changes; an event nobody handles - ``update`` in the
    gateway - costs a dictionary lookup. Errors are handled as mitmproxy does: an
    exception is logged (``safecall``) and the next addon of the chain still runs;
    ``AddonHalt`` ends the event; ``OptionsError`` is raised to the caller.
    """

    def __init__(self, master: Master) -> None:
        super().__init__(master)
        self._handlers: dict[str, list[list[Callable[..., Any]]]] = {}

    def register(self, addon: Any) -> Any:
        self._handlers.clear()
        return super().register(addon)

    def add(self, *addons: Any) -> None:
        super().add(*addons)
        self._handlers.clear()

    def remove(self, addon: Any) -> None:
        super().remove(addon)
        self._handlers.clear()

    def clear(self) -> None:
        super().clear()
        self._handlers.clear()

    def _lookup(self, name: str) -> list[list[Callable[..., Any]]]:
        """For each addon of the chain that handles ``name``: its (and its children's)
        methods for it, in mitmproxy's order."""
        found = self._handlers.get(name)
        if found is None:
            found = []
            for addon in self.chain:
                methods = [
                    method
                    for member in traverse([addon])
                    if callable(method := getattr(member, name, None))
                ]
                if methods:
                    found.append(methods)
            self._handlers[name] = found
        return found

    async def trigger_event(self, event: hooks.Hook) -> None:
        handlers = self._lookup(event.name)
        if not handlers:
            return
        args = event.args()
        for methods in handlers:
            try:
                with safecall():
                    for method in methods:
                        result = method(*args)
                        if result is not None and inspect.isawaitable(result):
                            await result
            except exceptions.AddonHalt:
                return

    async def handle_lifecycle(self, event: hooks.Hook) -> None:
        await self.trigger_event(event)
        message = event.args()[0]
        if isinstance(message, flow.Flow) and self._lookup(hooks.UpdateHook.name):
            await self.trigger_event(hooks.UpdateHook([message]))


class ProxyEngine:
    def __init__(
        self,
        *,
        modes: Sequence[str],
        listen_host: str,
        confdir: Path,
        addons: Sequence[Any],
        error_pages: errorpages.ErrorPages = errorpages.PLAIN,
    ) -> None:
        self._modes = list(modes)
        self._error_pages = error_pages
        self._listen_host = listen_host
        self._confdir = confdir
        self._addons = list(addons)
        self.master: Master | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 10.0) -> None:
        """Start the listeners; returns once all of them accept connections."""
        self._error_pages.install()
        ws_close.install()
        self._confdir.mkdir(parents=True, exist_ok=True)
        opts = options.Options()
        master = Master(opts)
        master.options.changed.disconnect(master.addons._configure_all)
        master.addons = HookTable(master)
        master.addons.add(
            core.Core(),
            proxyserver.Proxyserver(),
            next_layer.NextLayer(),
            *as_mitmproxy_addons(self._addons),
        )
        opts.update(
            mode=self._modes,
            listen_host=self._listen_host,
            confdir=str(self._confdir),
            connection_strategy="lazy",
            http2=False,
            http3=False,
            keep_host_header=True,
            validate_inbound_headers=True,
            # No raw TCP relay after a 101: the only switch the gateway admits is to a
            # WebSocket (addons/upgrades.py), which mitmproxy relays with its WebSocket layer.
            rawtcp=False,
        )
        self.master = master
        self._task = asyncio.create_task(master.run(), name="mitmproxy master")
        await self._wait_running(timeout)

    def _proxyserver(self) -> proxyserver.Proxyserver:
        assert self.master is not None
        return self.master.addons.get("proxyserver")

    async def _wait_running(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        server = self._proxyserver()
        while True:
            if self._task is not None and self._task.done():
                error = self._task.exception()
                raise EngineError(f"the proxy stopped during start-up: {error}")
            instances = list(server.servers)
            failed = [i for i in instances if i.last_exception is not None]
            if failed:
                details = "; ".join(
                    f"{i.mode.listen_port(0) or i.mode.full_spec}: {i.last_exception}"
                    for i in failed
                )
                await self.stop()
                raise EngineError(f"cannot listen on port {details}")
            if len(instances) == len(self._modes) and all(i.is_running for i in instances):
                return
            if loop.time() > deadline:
                await self.stop()
                raise EngineError("the proxy listeners did not start within the time limit")
            await asyncio.sleep(0.02)

    async def add_modes(self, modes: Sequence[str], timeout: float = 10.0) -> None:
        """More listeners while running (the WireGuard tunnel's, when it is turned on from
        the admin app); returns once they accept connections. If one cannot listen, the
        added ones are taken away again and :class:`EngineError` says why; the running
        listeners are untouched either way."""
        assert self.master is not None
        server = self._proxyserver()
        before = list(self._modes)
        self._modes = [*before, *modes]
        self.master.options.update(mode=list(self._modes))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            instances = list(server.servers)
            failed = [i for i in instances if i.last_exception is not None]
            ready = len(instances) == len(self._modes) and all(i.is_running for i in instances)
            if ready and not server.servers.is_updating:
                return
            if failed or loop.time() > deadline:
                self._modes = before
                self.master.options.update(mode=list(before))
                reason = "; ".join(str(i.last_exception) for i in failed) or "timed out"
                raise EngineError(f"cannot listen on {', '.join(modes)}: {reason}")
            await asyncio.sleep(0.02)

    @property
    def listen_addrs(self) -> list[tuple[str, int]]:
        return [(addr[0], addr[1]) for addr in self._proxyserver().listen_addrs()]

    @property
    def connections(self) -> dict[Any, Any]:
        return self._proxyserver().connections

    async def stop(self) -> None:
        """Close the listeners, then every open connection, then the master."""
        master = self.master
        if master is None:
            return
        self.master = None
        server = master.addons.get("proxyserver")
        try:
            master.options.update(server=False)
            for _ in range(100):
                if not list(server.servers) and not server.servers.is_updating:
                    break
                await asyncio.sleep(0.01)
        except Exception:  # pragma: no cover - shutting down regardless
            logger.exception("closing the proxy listeners failed")
        for handler in list(server.connections.values()):
            try:
                handler.close_connection(handler.client)
            except (KeyError, AssertionError):
                pass
        for _ in range(100):
            if not server.connections:
                break
            await asyncio.sleep(0.01)
        master.shutdown()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=2.0)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
