"""``python -m bench.lean_master``: the floor a mitmproxy-based gateway can reach.

A plain ``mitmproxy.master.Master`` with only ``Core``, ``Proxyserver``, ``NextLayer`` and
``TlsConfig`` plus one addon that answers 401 unless the request carries the expected
session cookie: what the issue calls "a plain Master with only the addons a reverse proxy
needs, plus a cookie check". A reference row, not a product.

Usage: python -m bench.lean_master --web PORT:UPSTREAM_PORT --ws PORT:UPSTREAM_PORT --cookie V
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from mitmproxy import http, options
from mitmproxy.addons import core, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master


class Noop:
    """An addon with the hooks a gateway addon typically has, doing nothing."""

    def __init__(self, index: int) -> None:
        self.name = f"noop{index}"

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        pass

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        pass


class Stream:
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        flow.request.stream = True

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            flow.response.stream = True


class CookieCheck:
    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self.value = value

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.request.cookies.get(self.name) != self.value:
            flow.response = http.Response.make(401, b"login required\n")


async def run(args: argparse.Namespace) -> None:
    opts = options.Options()
    master = Master(opts)
    master.addons.add(
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        CookieCheck(args.cookie_name, args.cookie),
        *[Noop(i) for i in range(args.noop_addons)],
        *([Stream()] if args.stream else []),
    )
    modes = []
    for spec in (args.web, args.ws):
        port, upstream = spec.split(":")
        modes.append(f"reverse:http://127.0.0.1:{upstream}@127.0.0.1:{port}")
    opts.update(
        mode=modes,
        connection_strategy="lazy",
        http2=False,
        http3=False,
        confdir=args.confdir,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, master.shutdown)
    await master.run()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--web", required=True)
    parser.add_argument("--ws", required=True)
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--cookie-name", default="cemm_session")
    parser.add_argument("--confdir", required=True)
    # Diagnostics: what extra addons and streaming cost mitmproxy (not used by run.py).
    parser.add_argument("--noop-addons", type=int, default=0)
    parser.add_argument("--stream", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
