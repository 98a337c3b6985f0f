"""Every operation of the admin app, once, by resource: the JSON API (:mod:`gateway.admin.api`)
and the pages (:mod:`gateway.admin.pages`) both call these.

Each function runs the service functions on the database worker (the service layer holds
every rule, raises every refusal - :mod:`gateway.services.errors` - and writes every
audit entry), names who did it and from which address, tells the proxy when logins or
peers changed (so a revoked session's WebSockets close at once), and answers the records
as the admin app shows them (:mod:`gateway.admin.views`). Refusals pass through untouched:
each edge maps them once.
"""

from __future__ import annotations

from gateway.admin.actions.peers import PEER_EXPIRY_CHOICES, WIREGUARD_OFF

__all__ = ["PEER_EXPIRY_CHOICES", "WIREGUARD_OFF"]
