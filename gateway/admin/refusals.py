"""The HTTP status of each kind of refusal (:mod:`gateway.services.errors`), for both
edges of the admin app: the JSON API answers it with the refusal's code and message
(:mod:`gateway.admin.api.errors`), the pages with the message on the page
(:mod:`gateway.admin.pages.common`)."""

from __future__ import annotations

from gateway.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError

_STATUS: tuple[tuple[type[ServiceError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (Invalid, 400),
)


def status_of(error: ServiceError) -> int:
    """404 not found, 409 conflict, 403 forbidden, 400 anything else refused."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400
