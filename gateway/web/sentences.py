"""The gateway's records in plain words: one audit entry, one refusal counter, one group of
failed logins - each as a sentence a person reads ("Wrong password or code for anna from
192.168.1.20"); and a length of time in words (:func:`duration`: "15 minutes").

The admin app's audit page and dashboard show these sentences; the raw event name and
details stay next to them for those who search or export (the CSV is unchanged). Every
sentence is whole, with named placeholders, and goes through gettext
(:mod:`gateway.web.i18n`), so a translation can reorder it. An event this module does not
know is shown as "<who>: <event>", never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.services.audit import AuditEntry
from gateway.web.i18n import gettext as _
from gateway.web.i18n import ngettext
from gateway.web.times import when

__all__ = [
    "audit_sentence",
    "duration",
    "failed_logins_sentence",
    "refusal_sentence",
    "who",
]

# The sentence of each audit event, with the detail keys it names (missing ones read as
# "?"); ``actor``, ``address`` (the client) and ``agent`` are always available.
_EVENTS: dict[str, Callable[[], str]] = {
    "login": lambda: _("%(actor)s logged in from %(address)s"),
    "logout": lambda: _("%(actor)s logged out"),
    "login.failure": lambda: _("Wrong password or code for %(actor)s from %(address)s"),
    "session.revoke": lambda: _("%(actor)s ended a session of %(user)s"),
    "session.revoke_all": lambda: _("%(actor)s ended every session of %(user)s"),
    "ban": lambda: _("%(subject)s is banned until %(until)s after too many failed logins"),
    "ban.lift": lambda: _("%(actor)s lifted the ban on %(subject)s"),
    "allowlist.add": lambda: _("%(actor)s added %(network)s to the allowlist"),
    "allowlist.update": lambda: _("%(actor)s changed the allowlist entry %(network)s"),
    "allowlist.remove": lambda: _("%(actor)s removed %(network)s from the allowlist"),
    "token.add": lambda: _("%(actor)s created an API token for %(user)s"),
    "token.revoke": lambda: _("%(actor)s revoked an API token of %(user)s"),
    "user.add": lambda: _("%(actor)s added the user %(user)s (%(role)s)"),
    "user.remove": lambda: _("%(actor)s removed the user %(user)s"),
    "user.role": lambda: _("%(actor)s made %(user)s %(role)s"),
    "user.password": lambda: _("%(actor)s changed the password of %(user)s"),
    "user.disable": lambda: _("%(actor)s disabled the user %(user)s"),
    "user.enable": lambda: _("%(actor)s enabled the user %(user)s"),
    "user.totp_enable": lambda: _("%(actor)s turned on an authenticator app for %(user)s"),
    "user.totp_reset": lambda: _("%(actor)s turned off the authenticator app of %(user)s"),
    "user.recovery_codes": lambda: _("%(actor)s made new recovery codes"),
    "guest.add": lambda: _("%(actor)s made a guest link for %(name)s"),
    "guest.revoke": lambda: _("%(actor)s revoked the guest link of %(name)s"),
    "guest.first_use": lambda: _("A guest link was used for the first time, from %(address)s"),
    "guest.login": lambda: _("%(actor)s came in through a guest link from %(address)s"),
    "peer.add": lambda: _("%(actor)s added the VPN peer %(peer)s"),
    "peer.remove": lambda: _("%(actor)s removed the VPN peer %(peer)s"),
    "peer.enable": lambda: _("%(actor)s enabled the VPN peer %(peer)s"),
    "peer.disable": lambda: _("%(actor)s disabled the VPN peer %(peer)s"),
    "peer.rotate": lambda: _("%(actor)s gave the VPN peer %(peer)s new keys"),
    "peer.trusted": lambda: _("%(actor)s made the VPN peer %(peer)s a trusted device"),
    "peer.untrusted": lambda: _("%(actor)s made the VPN peer %(peer)s an ordinary device"),
    "peer.link": lambda: _("%(actor)s made a one-time link for the VPN peer %(peer)s"),
    "peer.link_used": lambda: _("The one-time link of the VPN peer %(peer)s was opened"),
    "upstream.down": lambda: _("The CEMM stopped answering"),
    "upstream.up": lambda: _("The CEMM answers again"),
    "upstream.clock_drift": lambda: _("The CEMM's clock is off"),
    "backup.failed": lambda: _("An automatic backup failed: %(reason)s"),
    "proxy.unadmitted_switch": lambda: _(
        "The CEMM switched a request from %(client)s to another protocol; the gateway closed it"
    ),
    "acme.challenge_answered": lambda: _("The certificate authority checked the gateway"),
    "notify.test": lambda: _("%(actor)s sent a test notification"),
}

# Refusal counters (the proxy's reasons) as "N requests ..." sentences.
_REFUSALS: dict[str, Callable[[int], str]] = {
    "not_allowlisted": lambda n: ngettext(
        "%(count)d connection from an address not on the allowlist",
        "%(count)d connections from addresses not on the allowlist",
        n,
    ),
    "no_credentials": lambda n: ngettext(
        "%(count)d request without a login", "%(count)d requests without a login", n
    ),
    "invalid_session": lambda n: ngettext(
        "%(count)d request with an expired or ended login",
        "%(count)d requests with an expired or ended login",
        n,
    ),
    "ended_session": lambda n: ngettext(
        "%(count)d live connection closed because its login ended",
        "%(count)d live connections closed because their login ended",
        n,
    ),
    "invalid_token": lambda n: ngettext(
        "%(count)d request with an unknown API token",
        "%(count)d requests with an unknown API token",
        n,
    ),
    "foreign_origin": lambda n: ngettext(
        "%(count)d request from another web site", "%(count)d requests from other web sites", n
    ),
    "missing_origin": lambda n: ngettext(
        "%(count)d change without a known origin", "%(count)d changes without a known origin", n
    ),
    "viewer_read_only": lambda n: ngettext(
        "%(count)d change tried by a viewer", "%(count)d changes tried by viewers", n
    ),
    "too_many_connections": lambda n: ngettext(
        "%(count)d connection over one device's limit",
        "%(count)d connections over a device's limit",
        n,
    ),
    "unsupported_upgrade": lambda n: ngettext(
        "%(count)d request to switch to a protocol the gateway does not pass on",
        "%(count)d requests to switch to a protocol the gateway does not pass on",
        n,
    ),
    "upstream_timeout": lambda n: ngettext(
        "%(count)d request the CEMM did not answer in time",
        "%(count)d requests the CEMM did not answer in time",
        n,
    ),
}


def who(actor: str) -> str:
    """An actor as a person reads it: the gateway itself for ``system`` actors, the
    command line for ``cli:...``, else the name."""
    if actor == "system" or actor.startswith("system:"):
        return _("The gateway")
    if actor.startswith("cli:"):
        return _("The command line (%(user)s)") % {"user": actor[4:]}
    if actor in ("-", ""):
        return _("Someone")
    return actor


class _Detail(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def audit_sentence(entry: AuditEntry) -> str:
    """One audit entry as a sentence."""
    template = _EVENTS.get(entry.event)
    if template is None:
        return _("%(actor)s: %(event)s") % {"actor": who(entry.actor), "event": entry.event}
    values = _Detail({key: _shown(key, value) for key, value in entry.detail.items()})
    values.update(
        actor=who(entry.actor),
        address=entry.client_address or _("an unknown address"),
        agent=entry.user_agent or "-",
    )
    return template() % values


def _shown(key: str, value: Any) -> str:
    if key in ("until", "expires_at") and isinstance(value, int | float):
        return when(value)
    if key == "subject" and isinstance(value, str):
        return value.partition(":")[2] or value
    return str(value)


def refusal_sentence(reason: str, count: int) -> str:
    """A refusal counter as a sentence; an unknown reason in words from its name."""
    sentence = _REFUSALS.get(reason)
    if sentence is None:
        return _("%(count)d refused: %(reason)s") % {
            "count": count,
            "reason": reason.replace("_", " "),
        }
    return sentence(count) % {"count": count}


def failed_logins_sentence(user: str, address: str | None, count: int) -> str:
    """A group of failed logins of one name from one address."""
    values: Mapping[str, Any] = {
        "user": who(user),
        "address": address or _("an unknown address"),
        "count": count,
    }
    return (
        ngettext(
            "Wrong password or code for %(user)s from %(address)s",
            "Wrong password or code for %(user)s from %(address)s, %(count)d times",
            count,
        )
        % values
    )


# (from how many seconds on a unit is used, its size, its words)
_UNITS: tuple[tuple[int, int, Callable[[int], str]], ...] = (
    (2 * 86400, 86400, lambda n: ngettext("%(count)d day", "%(count)d days", n)),
    (3600, 3600, lambda n: ngettext("%(count)d hour", "%(count)d hours", n)),
    (60, 60, lambda n: ngettext("%(count)d minute", "%(count)d minutes", n)),
    (0, 1, lambda n: ngettext("%(count)d second", "%(count)d seconds", n)),
)


def duration(seconds: float) -> str:
    """A length of time in words, in one whole unit, rounded down: ``45 seconds``,
    ``15 minutes``, ``36 hours`` (hours up to two days: "1 day" would hide half of it),
    ``3 days``."""
    whole = max(int(seconds), 0)
    _, size, words = next(unit for unit in _UNITS if whole >= unit[0])
    count = whole // size
    return words(count) % {"count": count}
