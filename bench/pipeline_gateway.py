"""``python -m bench.pipeline_gateway run --config FILE``: a diagnostic variant of the gateway.

The same gateway, except that its addons are registered with mitmproxy as **one** addon
that calls each of them in order for every hook. mitmproxy dispatches every event to every
registered addon (a traversal, a ``getattr`` and a context manager per addon and event),
so this measures what the number of addons costs - the fix proposed for the c=16 target -
without changing the product. Not for use outside the benchmark.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

from mitmproxy import hooks

import gateway.proxy.engine as engine
from gateway.cli import main

LIFECYCLE = ("load", "configure", "running", "done")


class Pipeline:
    name = "cemm_pipeline"

    def __init__(self, addons: list[Any]) -> None:
        # Not ``self.addons``: mitmproxy would treat those as nested addons and dispatch
        # every event to each of them again.
        self._members = addons
        for event in [*hooks.all_hooks, *LIFECYCLE]:
            handlers = [getattr(a, event) for a in addons if callable(getattr(a, event, None))]
            if handlers:
                setattr(self, event, _chain(handlers))


def _chain(handlers: list[Callable[..., Any]]) -> Callable[..., Any]:
    if any(inspect.iscoroutinefunction(h) for h in handlers):

        async def chained_async(*args: Any) -> None:
            for handler in handlers:
                result = handler(*args)
                if inspect.isawaitable(result):
                    await result

        return chained_async

    def chained(*args: Any) -> None:
        for handler in handlers:
            handler(*args)

    return chained


_init = engine.ProxyEngine.__init__


def _pipelined_init(self: Any, **kwargs: Any) -> None:
    kwargs["addons"] = [Pipeline(list(kwargs["addons"]))]
    _init(self, **kwargs)


engine.ProxyEngine.__init__ = _pipelined_init  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
