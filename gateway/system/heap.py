"""The collector and what start-up made.

Once started, the gateway collects what start-up left in reference cycles and freezes the
rest (``gc.freeze``): imports, the web app and its models, the proxy's addons - the
gateway's own long-lived state, some 165,000 objects. Frozen, the cyclic collector no
longer walks them, so a full collection that comes during a burst of requests (a login
storm) looks only at what was made since: measured in the login storm of ``bench/``, a
full collection took 84-100 ms before and about 11 ms after, during which the event loop
the proxy and the web app share - and so every proxied request - waits.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_start_up"]


def freeze_start_up() -> None:
    """Collect what start-up left in cycles, then freeze everything that survived."""
    gc.collect()
    gc.freeze()
