"""The gateway's addons reach mitmproxy as one addon (gateway/proxy/engine.py::AddonChain)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from mitmproxy import hooks
from mitmproxy.test import taddons, tflow

from gateway.proxy.engine import AddonChain


class Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.label = name
        self.calls = calls

    def requestheaders(self, flow) -> None:
        self.calls.append(f"{self.label}.requestheaders")


class AsyncRecorder(Recorder):
    async def server_connected(self, data) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.label}.server_connected")


class Failing:
    def requestheaders(self, flow) -> None:
        raise RuntimeError("boom")


def test_only_implemented_hooks_exist_and_members_run_in_order() -> None:
    calls: list[str] = []
    chain = AddonChain([Recorder("a", calls), AsyncRecorder("b", calls), Recorder("c", calls)])
    assert not hasattr(chain, "response") and not hasattr(chain, "addons")
    assert set(vars(chain)) - {"members"} == {"requestheaders", "server_connected"}
    chain.requestheaders(tflow.tflow())  # type: ignore[attr-defined]
    asyncio.run(chain.server_connected(object()))  # type: ignore[attr-defined]
    assert calls == [
        "a.requestheaders",
        "b.requestheaders",
        "c.requestheaders",
        "b.server_connected",
    ]


def test_a_failing_member_is_logged_and_the_next_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    chain = AddonChain([Failing(), Recorder("after", calls)])
    with caplog.at_level(logging.ERROR, logger="cemm_gateway.proxy"):
        chain.requestheaders(tflow.tflow())  # type: ignore[attr-defined]
    assert calls == ["after.requestheaders"]
    assert "requestheaders of Failing failed" in caplog.text


def test_mitmproxy_dispatches_through_the_chain_once_per_member() -> None:
    calls: list[str] = []
    with taddons.context() as tctx:
        tctx.master.addons.add(AddonChain([Recorder("a", calls), Recorder("b", calls)]))
        flow = tflow.tflow()
        asyncio.run(tctx.master.addons.handle_lifecycle(hooks.all_hooks["requestheaders"](flow)))
    assert calls == ["a.requestheaders", "b.requestheaders"]
