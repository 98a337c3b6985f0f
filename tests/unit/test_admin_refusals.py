"""How the admin app's edges answer a refusal of the service layer: the JSON API in one
place (gateway/admin/api/errors.py), the pages in one place (gateway/admin/pages/common.py),
both with the status of the refusal's kind (gateway/admin/refusals.py)."""

from __future__ import annotations

import json

import pytest

from gateway.admin.api.errors import service_refusal
from gateway.admin.pages.common import refused
from gateway.admin.refusals import status_of
from gateway.services.allowlist import AllowlistInvalid, EntryNotFound, SelfLockoutError
from gateway.services.api_tokens import TokenNotFound, TokenRevoked
from gateway.services.bans import BanNotFound
from gateway.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from gateway.services.peers import ConfigUnavailable, PeerExists, PeerInvalid, PeerNotFound
from gateway.services.users import (
    LastAdminError,
    OwnAccountError,
    UserExistsError,
    UserInvalid,
    UserNotFound,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("x"), 404, "not_found"),
        (Conflict("x"), 409, "conflict"),
        (Forbidden("x"), 403, "forbidden"),
        (Invalid("x"), 400, "invalid"),
        (ServiceError("x"), 400, "invalid"),
        (EntryNotFound("x"), 404, "not_found"),
        (AllowlistInvalid("x"), 400, "invalid"),
        (UserNotFound("x"), 404, "not_found"),
        (UserInvalid("x"), 400, "invalid"),
        (UserExistsError("x"), 409, "exists"),
        (LastAdminError("x"), 409, "last_admin"),
        (OwnAccountError("x"), 409, "own_account"),
        (TokenNotFound("x"), 404, "not_found"),
        (TokenRevoked("x"), 409, "already_revoked"),
        (BanNotFound("x"), 404, "not_found"),
        (PeerNotFound("x"), 404, "not_found"),
        (PeerInvalid("x"), 400, "invalid"),
        (PeerExists("x"), 409, "exists"),
        (ConfigUnavailable("x"), 409, "config_unavailable"),
    ],
)
def test_each_kind_has_one_status_and_a_stable_code(
    error: ServiceError, status: int, code: str
) -> None:
    assert status_of(error) == status
    answer = service_refusal(error)
    assert answer.status_code == status
    assert json.loads(answer.body) == {"error": code, "detail": "x"}
    assert refused(error).status_code == status
    assert refused(error).error == "x"


def test_the_api_names_the_field_and_what_a_self_lockout_adds() -> None:
    body = json.loads(service_refusal(Invalid("too long", field="label")).body)
    assert body == {"error": "invalid", "detail": "too long", "field": "label"}
    lockout = SelfLockoutError("cut off", address="192.0.2.1", admitted_until=None)
    answer = service_refusal(lockout)
    assert answer.status_code == 409
    assert json.loads(answer.body) == {
        "error": "self_lockout",
        "detail": "cut off",
        "address": "192.0.2.1",
        "admitted_until": None,
    }


def test_the_per_service_errors_are_still_caught_by_their_service_class() -> None:
    # The CLI catches each service's error class; the kinds add to them, never replace.
    from gateway.services.allowlist import AllowlistError
    from gateway.services.peers import PeerError
    from gateway.services.users import UserError

    assert isinstance(EntryNotFound("x"), AllowlistError)
    assert isinstance(PeerExists("x"), PeerError)
    assert isinstance(UserNotFound("x"), UserError)
    assert isinstance(UserNotFound("x"), ValueError)
