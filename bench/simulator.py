"""``python -m bench.simulator ARGS``: the CEMM simulator, with TCP_NODELAY on its sockets.

The simulator binds its listening sockets with ``socket.create_server``, whose sockets have
``proto == 0``; asyncio only sets TCP_NODELAY on accepted sockets whose proto is
IPPROTO_TCP, so the simulator's responses on a kept-alive connection wait for the
client's delayed ACK (~40 ms per request: 23 requests/s at concurrency 1). A real CEMM
does not behave like that, and it would hide every proxy's cost behind 40 ms, so the
benchmark sets TCP_NODELAY on the listening sockets (Linux passes it on to accepted
ones). Harmless once the simulator does it itself.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import gateway.simulator.server as simulator_server
from gateway.simulator.__main__ import main

_bind = simulator_server._bind


def _bind_nodelay(*args: Any, **kwargs: Any) -> socket.socket:
    sock = _bind(*args, **kwargs)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


simulator_server._bind = _bind_nodelay

if __name__ == "__main__":
    sys.exit(main())
