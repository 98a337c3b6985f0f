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

The message is a template and its parameters (:class:`gateway.i18n.Message`):
``raise PeerNotFound(N_("there is no peer '{name}'; ..."), name=name)``. ``message`` (and
``str()``) is the English text, what the CLI and the JSON API show; :meth:`ServiceError.
translated` is the same in the reader's language, what a page shows. A plain string
without parameters is taken as it is (shown untranslated unless it is a catalog message).
"""

from __future__ import annotations

from gateway.i18n import Message

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "ServiceError"]


class ServiceError(ValueError):
    """A refusal with a message a person can act on; ``field`` names the input at fault."""

    code = "invalid"

    def __init__(
        self, message: str | Message, *, field: str | None = None, **params: object
    ) -> None:
        self.text = message if isinstance(message, Message) else Message(message, **params)
        self.message = str(self.text)
        super().__init__(self.message)
        self.field = field

    def translated(self) -> str:
        """The message in the reader's language (:func:`gateway.i18n.current_language`)."""
        return self.text.translated()

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
