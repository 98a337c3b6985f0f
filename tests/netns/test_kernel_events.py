"""gateway/system/netlink.py: the kernel says when interfaces, addresses and nftables change.

The WireGuard check waits for these instead of starting ``ip`` and ``nft`` every two
seconds; if a change went unheard, a flushed firewall rule would stay gone for up to 30 s.
Run in a network namespace of the test's own, where the test adds a link, an address and
an nftables table and removes the table again - each must be heard within a second, and
nothing must be heard while nothing changes.
"""

from __future__ import annotations

import json

import pytest

from tests.support.gateway import ROOT
from tests.support.netns import Lab, require_netns

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

LISTEN = r"""
import asyncio, json, subprocess, sys
sys.path.insert(0, sys.argv[1])
from gateway.system import netlink

async def heard(changed, *command):
    changed.clear()
    if command:
        subprocess.run(command, check=True, capture_output=True)
    try:
        await asyncio.wait_for(changed.wait(), 1.0)
        return True
    except TimeoutError:
        return False

async def main():
    changed = asyncio.Event()
    events = netlink.watch(changed)
    await asyncio.sleep(0.2)
    result = {
        "links": events.links,
        "firewall": events.firewall,
        "quiet": not await heard(changed),
        "link added": await heard(
            changed, "ip", "link", "add", "cgwev0", "type", "veth", "peer", "name", "cgwev1"
        ),
        "address added": await heard(
            changed, "ip", "address", "add", "198.18.200.1/24", "dev", "cgwev0"
        ),
        "table added": await heard(changed, "nft", "add", "table", "inet", "cgw_events"),
        "table deleted": await heard(changed, "nft", "delete", "table", "inet", "cgw_events"),
        "link deleted": await heard(changed, "ip", "link", "del", "cgwev0"),
    }
    result["quiet after"] = not await heard(changed)
    events.close()
    print(json.dumps(result))

asyncio.run(main())
"""


@pytest.fixture(autouse=True)
def _netns() -> None:
    require_netns()


def test_changes_are_heard_and_nothing_else() -> None:
    with Lab(gateway_in_namespace=True) as lab:
        done = lab.gateway_host.python(LISTEN, str(ROOT), timeout=30)
    result = json.loads(done.stdout)
    assert result == {
        "links": True,
        "firewall": True,
        "quiet": True,
        "link added": True,
        "address added": True,
        "table added": True,
        "table deleted": True,
        "link deleted": True,
        "quiet after": True,
    }
