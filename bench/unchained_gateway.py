"""``python -m bench.unchained_gateway run --config FILE``: a diagnostic variant of the gateway.

The same gateway, except that each of its addons is registered with mitmproxy on its own
instead of through :class:`gateway.proxy.engine.AddonChain`: what the chain saves. Not for
use outside the benchmark.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import gateway.proxy.engine as engine
from gateway.cli import main


def _unchained(addons: Sequence[Any]) -> list[Any]:
    return list(addons)


engine.as_mitmproxy_addons = _unchained

if __name__ == "__main__":
    sys.exit(main())
