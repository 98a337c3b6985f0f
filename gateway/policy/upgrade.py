"""Whether a request asks to switch protocols, and to what: the one upgrade rule.

An HTTP/1.1 request asks for another protocol with ``Upgrade`` (RFC 9110, section 7.8): a
comma-separated list of protocol names, each optionally ``/version``, compared without
regard to case, possibly spread over several ``Upgrade`` lines, with optional white space
around each element and empty elements allowed (``websocket,`` is one element). A
WebSocket opening handshake (RFC 6455, section 4.1) is ``Upgrade: websocket``. mitmproxy,
the CEMM's server and browsers read it that way; a rule that compares the header with
``websocket`` as a whole string does not, and the difference is an upgrade nobody checked.
So the gateway reads the header here, the same way, and then makes what it forwards say
exactly what it decided (:func:`forwarded_connection`):

- No element at all (no ``Upgrade``, or only empty or blank ones): ``none``. The request is
  ordinary HTTP; ``Upgrade`` and the ``upgrade`` option of ``Connection`` are removed
  before it is forwarded, so nothing behind the gateway can read an upgrade into it.
- Every element is the name ``websocket`` (any case, repeated or not, no version):
  ``websocket``. It is forwarded as exactly ``Upgrade: websocket`` with
  ``Connection: Upgrade``, and checked and registered as a WebSocket (Origin rule,
  credential, closing when the credential ends).
- Anything else (``h2c``, ``TLS/1.2``, ``websocket/13``, ``websocket, h2c``): ``other``.
  The gateway relays no protocol but WebSocket, so such a request is refused (400) before
  anything reaches the CEMM. A list naming WebSocket beside another protocol would leave
  the choice to the device; the gateway does not leave it.

``Connection`` is not needed to classify: a request that names an upgrade is treated as
asking for it whatever its ``Connection`` says (the stricter reading: it is checked as an
upgrade), and is forwarded with ``Connection: Upgrade`` only when admitted as a WebSocket.

The response side has one rule too: a ``101 Switching Protocols`` reaches the client only
for a request admitted here as ``websocket``, and only when the 101 itself switches to
``websocket`` (the only protocol mitmproxy then relays with its WebSocket layer, which the
gateway watches). Any other 101 is cut off (:func:`switch_allowed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

UpgradeKind = Literal["none", "websocket", "other"]

WEBSOCKET = "websocket"


def upgrade_elements(values: Iterable[str]) -> list[str]:
    """The non-empty elements of every ``Upgrade`` line, stripped and lower-cased."""
    return [
        element.strip(" \t").lower()
        for value in values
        for element in value.split(",")
        if element.strip(" \t")
    ]


def requested_upgrade(upgrade: Iterable[str]) -> UpgradeKind:
    """What the request's ``Upgrade`` lines (every value, in order) ask for."""
    elements = upgrade_elements(upgrade)
    if not elements:
        return "none"
    if all(element == WEBSOCKET for element in elements):
        return "websocket"
    return "other"


def forwarded_connection(values: Iterable[str], kind: UpgradeKind) -> str | None:
    """The ``Connection`` value to forward: the client's options without ``upgrade``, plus
    ``Upgrade`` for an admitted WebSocket; None where nothing is left."""
    options = [
        element.strip(" \t")
        for value in values
        for element in value.split(",")
        if element.strip(" \t") and element.strip(" \t").lower() != "upgrade"
    ]
    if kind == "websocket":
        options.append("Upgrade")
    return ", ".join(options) or None


def switch_allowed(kind: UpgradeKind | None, admitted: bool, response_upgrade: str) -> bool:
    """Whether a ``101`` answer may reach the client: only one that switches an admitted
    WebSocket request to exactly ``websocket``."""
    return kind == "websocket" and admitted and response_upgrade.strip(" \t").lower() == WEBSOCKET
