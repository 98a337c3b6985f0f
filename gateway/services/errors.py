"""What a service refuses, by kind, so every edge maps it once.

A service function checks its own rules and raises one of these with a message the person
can act on ("there is no peer 'anna'; 'cemm-gateway peer list' shows them"). The edges
translate the kind, never re-check the rule:

=============  ===========================  ==========================  ==================
kind           CLI (``gateway/cli``)        JSON API                    admin pages
=============  ===========================  ==========================  ==================
NotFound       message, exit 1              404 ``not_found``           the not-found page
Conflict       message, exit 1              409 ``conflict``            message in the form
Invalid        message, exit 1              400 ``invalid`` + field     message in the form
Forbidden      message, exit 1              403 ``forbidden``           message in the form
=============  ===========================  ==========================  ==================

``field`` names the form or JSON field the message is about, when there is one.
``code`` is the stable machine-readable word the JSON API answers as ``error``: the kind's
own (``not_found``, ``conflict``, ``invalid``, ``forbidden``) unless a service names the
case more precisely (``last_admin``, ``self_lockout``); :meth:`ServiceError.extra` holds
what a refusal adds for a script (the address a self lock-out would cut off).
Every kind is a ``ValueError``, so code that only needs "refused" catches
:class:`ServiceError`.
"""

from __future__ import annotations

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "ServiceError"]


class ServiceError(ValueError):
    """A refusal with a message a person can act on; ``field`` names the input at fault."""

    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def extra(self) -> dict[str, object]:
        """What the refusal tells a script besides the message (none by default)."""
        return {}


class NotFound(ServiceError):
    """The thing named does not exist (or no longer)."""

    code = "not_found"


class Conflict(ServiceError):
    """The request clashes with what exists: a duplicate name, an already revoked token, the
    last enabled admin, a change to one's own account."""

    code = "conflict"


class Invalid(ServiceError):
    """The input is not acceptable as given."""

    code = "invalid"


class Forbidden(ServiceError):
    """Allowed to nobody in this situation."""

    code = "forbidden"
