"""The notifiable events: one registry, one line per event.

Names are the audit log's event names where the event is audited (``user.add``, ``ban``),
and names of the same form for what the gateway notices itself (``login.new_device``,
``upstream.down``). Each event has a short title, a sentence with ``{placeholders}`` filled
from the event's details (a missing detail reads ``?``), and the admin app page that shows
it. Adding an event is adding one :class:`Event` line to :data:`EVENTS`.

The texts are marked with :func:`N_` for the message catalogs and translated when a message
is made (:mod:`gateway.notify.message`), so they are in the reader's language.
"""

from __future__ import annotations

from dataclasses import dataclass


def N_(message: str) -> str:
    """Marks ``message`` for the catalogs; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class Event:
    name: str
    title: str
    text: str
    page: str


EVENTS: dict[str, Event] = {
    event.name: event
    for event in (
        Event("login.new_device", N_("Login from a new device"),
              N_("{user} logged in from a new device ({user_agent})."), "/sessions"),
        Event("login.new_address", N_("Login from a new address"),
              N_("{user} logged in from an address not seen for this account in 90 days."),
              "/sessions"),
        Event("login.failure_burst", N_("Failed logins"),
              N_("{count} failed logins for {subject} within {window}."), "/audit"),
        Event("ban", N_("Banned"), N_("{subject} is banned until {until}."), "/bans"),
        Event("user.add", N_("New user"), N_("{actor} added the user {user} ({role})."),
              "/users"),
        Event("user.role", N_("Role changed"),
              N_("{actor} made {user} {role}."), "/users"),
        Event("allowlist.add", N_("Allowlist changed"),
              N_("{actor} added {network} to the allowlist."), "/allowlist"),
        Event("allowlist.update", N_("Allowlist changed"),
              N_("{actor} changed {network} on the allowlist."), "/allowlist"),
        Event("allowlist.remove", N_("Allowlist changed"),
              N_("{actor} removed {network} from the allowlist."), "/allowlist"),
        Event("token.add", N_("New API token"),
              N_("{actor} made a new API token for {user}."), "/tokens"),
        Event("upstream.down", N_("CEMM not answering"),
              N_("The CEMM has not answered for {duration}: {error}"), "/"),
        Event("upstream.up", N_("CEMM answers again"),
              N_("The CEMM answers again after {duration}."), "/"),
        Event("upstream.clock_drift", N_("CEMM clock wrong"),
              N_("The CEMM's clock is {drift} s off the gateway's (threshold {threshold} s)."),
              "/"),
        Event("peer.first_handshake", N_("VPN device connected"),
              N_("The VPN peer {peer} made its first handshake."), "/peers"),
        Event("peer.new_endpoint", N_("VPN device at a new address"),
              N_("The VPN peer {peer} made a handshake from a new address."), "/peers"),
        Event("certificate.expiring", N_("Certificate expires soon"),
              N_("The gateway's TLS certificate expires on {expires}."), "/"),
        Event("certificate.renewal_failed", N_("Certificate order failed"),
              N_("The certificate for {domains} could not be ordered; the current one keeps"
                 " serving: {error}"), "/"),
        Event("guest.first_use", N_("Guest link used"),
              N_("{actor} opened the guest link '{link_name}' ({role}) from {address}."),
              "/guests"),
        Event("backup.failed", N_("Backup failed"), N_("A backup failed: {reason}"), "/"),
        Event("gateway.start", N_("Gateway started"),
              N_("The gateway (version {version}) started."), "/"),
    )
}  # fmt: skip

#: Sent by "send a test message" and ``cemm-gateway notify test``; always delivered.
TEST = Event("notify.test", N_("Test message"),
             N_("A test message from the gateway, sent by {actor}."), "/notify")  # fmt: skip


def unknown(names: list[str]) -> list[str]:
    """The names in ``names`` that are not notifiable events."""
    return [name for name in names if name not in EVENTS]
