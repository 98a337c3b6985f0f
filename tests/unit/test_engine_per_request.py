"""What the embedded mitmproxy does per request (gateway/proxy/engine.py).

The master's dispatch (``HookTable``) calls what mitmproxy's would: each test runs the same
events through mitmproxy's own ``AddonManager`` and through the ``HookTable`` and compares
what the addons saw, in order, and what was logged. And messages are made without
mitmproxy's debug-mode type check of their fields.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from mitmproxy import exceptions, hooks, http, options
from mitmproxy.addonmanager import AddonManager
from mitmproxy.test import tflow, tutils
from mitmproxy.utils import typecheck

from gateway.proxy.engine import HookTable
from gateway.proxy.mitm_addons import Master


class Recorder:
    def __init__(self, label: str, calls: list[str]) -> None:
        self.name = label
        self.calls = calls

    def requestheaders(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.requestheaders")

    async def response(self, flow: Any) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.name}.response")


class Parent(Recorder):
    """An addon with a child addon: mitmproxy calls the child right after its parent."""

    def __init__(self, label: str, calls: list[str]) -> None:
        super().__init__(label, calls)
        self.addons = [Recorder(f"{label}-child", calls)]


class Failing:
    name = "failing"

    def requestheaders(self, flow: Any) -> None:
        raise RuntimeError("boom")


class Halting:
    name = "halting"

    def response(self, flow: Any) -> None:
        raise exceptions.AddonHalt()


class Updating(Recorder):
    def update(self, flows: Any) -> None:
        self.calls.append(f"{self.name}.update")


def _manager(manager_type: type[AddonManager]) -> Any:
    master = Master(options.Options(), event_loop=asyncio.new_event_loop())
    manager = manager_type(master)
    master.addons = manager
    return manager


def _run(manager_type: type[AddonManager], make: Any, events: list[str]) -> list[str]:
    calls: list[str] = []
    manager = _manager(manager_type)
    manager.add(*make(calls))
    flow = tflow.tflow(resp=True)

    async def send() -> None:
        for event in events:
            await manager.handle_lifecycle(hooks.all_hooks[event](flow))

    asyncio.run(send())
    return calls


CHAINS = {
    "plain": lambda calls: [Recorder("a", calls), Recorder("b", calls)],
    "children": lambda calls: [Parent("p", calls), Recorder("b", calls)],
    "failing": lambda calls: [Recorder("a", calls), Failing(), Recorder("b", calls)],
    "halting": lambda calls: [Recorder("a", calls), Halting(), Recorder("b", calls)],
    "update": lambda calls: [Recorder("a", calls), Updating("u", calls)],
}


@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_the_same_addons_are_called_in_the_same_order(
    chain: str, caplog: pytest.LogCaptureFixture
) -> None:
    events = ["requestheaders", "response", "requestheaders"]
    with caplog.at_level(logging.ERROR):
        expected = _run(AddonManager, CHAINS[chain], events)
        logged_by_mitmproxy = [r.getMessage() for r in caplog.records]
        caplog.clear()
        got = _run(HookTable, CHAINS[chain], events)
        logged = [r.getMessage() for r in caplog.records]
    assert got == expected
    assert logged == logged_by_mitmproxy
    assert expected  # the chains do see the events


def test_update_events_are_sent_only_to_addons_that_have_them() -> None:
    calls = _run(HookTable, CHAINS["update"], ["requestheaders"])
    assert calls == ["a.requestheaders", "u.requestheaders", "u.update"]


def test_an_added_or_removed_addon_is_seen_by_the_next_event() -> None:
    calls: list[str] = []
    table = _manager(HookTable)
    first = Recorder("a", calls)
    table.add(first)
    flow = tflow.tflow()

    def send() -> None:
        asyncio.run(table.handle_lifecycle(hooks.all_hooks["requestheaders"](flow)))

    send()
    table.add(Recorder("b", calls))
    send()
    table.remove(first)
    send()
    assert calls == ["a.requestheaders", "a.requestheaders", "b.requestheaders", "b.requestheaders"]


def test_options_errors_reach_the_caller() -> None:
    class Refusing:
        def requestheaders(self, flow: Any) -> None:
            raise exceptions.OptionsError("bad option")

    table = _manager(HookTable)
    table.add(Refusing())
    with pytest.raises(exceptions.OptionsError):
        asyncio.run(table.trigger_event(hooks.all_hooks["requestheaders"](tflow.tflow())))


def test_messages_are_made_without_the_debug_type_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def checked(*args: Any) -> None:
        raise AssertionError("a field type was checked")

    monkeypatch.setattr(typecheck, "check_option_type", checked)
    request = tutils.treq()
    response = http.Response.make(200, b"ok", {"content-type": "text/plain"})
    assert request.method == "GET" and response.content == b"ok"
