"""How the admin API refuses, in one place: ``{"error": code, "detail": text}``.

- A refusal of the service layer (:mod:`gateway.services.errors`) is answered with the
  status of its kind (:func:`gateway.admin.refusals.status_of`: 404, 409, 403, 400), its
  code (``not_found``, ``exists``, ``self_lockout``, ...), its message, ``field`` when it
  names one, and what the refusal adds for a script (a self lock-out's address).
- A request that does not fit the operation's schema (a missing or extra field, a wrong
  type, a pattern, a bound) is refused with 422 in the API's own shape,
  :class:`ValidationErrorOut`, instead of FastAPI's ``{"detail": [...]}``.

:class:`ApiRoute` applies both to every route of the API.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from gateway.admin.models import FieldErrorOut, ValidationErrorOut
from gateway.admin.refusals import status_of
from gateway.services.errors import ServiceError


def service_refusal(error: ServiceError) -> JSONResponse:
    """A refusal of the service layer as the API answers it."""
    body: dict[str, Any] = {"error": error.code, "detail": error.message}
    if error.field is not None:
        body["field"] = error.field
    return JSONResponse({**body, **error.extra()}, status_code=status_of(error))


def _field_error(error: Any) -> FieldErrorOut:
    """One of pydantic's errors as a location and a sentence (never the value sent)."""
    loc: Sequence[str | int] = error.get("loc") or ()
    if error.get("type") == "json_invalid":  # loc is ("body", character offset)
        reason = (error.get("ctx") or {}).get("error") or "not JSON"
        offset = f" at character {loc[1]}" if len(loc) > 1 else ""
        return FieldErrorOut(location="body", message=f"not valid JSON{offset}: {reason}")
    location = ""
    for part in loc:
        if isinstance(part, int):
            location += f"[{part}]"
        else:
            location += f".{part}" if location else str(part)
    message = str(error.get("msg") or "not valid").removeprefix("Value error, ")
    return FieldErrorOut(location=location or "request", message=message)


def validation_refusal(error: RequestValidationError) -> JSONResponse:
    """A request FastAPI could not validate, answered in the API's own error shape."""
    fields = [_field_error(each) for each in error.errors()]
    detail = "; ".join(f"{field.location}: {field.message}" for field in fields)
    body = ValidationErrorOut(
        error="invalid_request", detail=detail or "the request is not valid", errors=fields
    )
    return JSONResponse(body.model_dump(), status_code=422)


class ApiRoute(APIRoute):
    """A route of the admin API: refusals answered as the module doc says; and only an
    operation that takes input documents the 422."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is None and not get_flat_params(self.dependant):
            self.responses.pop(422, None)
            self.response_fields.pop(422, None)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return validation_refusal(error)
            except ServiceError as error:
                return service_refusal(error)

        return handle
