"""Page forms are read through the JSON API's input models
(:mod:`gateway.admin.pages.forms`): what the model refuses, the page words as it words the
field, in the order the page checks them."""

from __future__ import annotations

import pytest

from gateway.admin.pages import allowlist, guests, peers, tokens, users
from gateway.admin.pages.common import Form
from gateway.admin.pages.forms import FormModel
from gateway.services.api_tokens import NAME_LENGTH, NAME_NOT_PLAIN
from gateway.services.errors import Invalid, NotFound, ServiceError

FORMS: list[FormModel] = [
    tokens.CREATE,
    users.ADD,
    users.ROLE,
    users.PASSWORD,
    peers.ADD,
    allowlist.ADD,
]  # type: ignore[type-arg]

GOOD = {"user": "anna", "name": "  home assistant ", "expires": "7d", "read_only": "on"}


def test_a_good_form_is_the_apis_input() -> None:
    body = tokens.CREATE.read(Form(GOOD))
    assert body.model_dump() == {
        "user": "anna",
        "name": "home assistant",
        "read_only": True,
        "expires": "7d",
    }


def test_absent_fields_take_the_models_defaults() -> None:
    body = tokens.CREATE.read(Form({"user": "anna", "name": "ci"}))
    assert (body.read_only, body.expires) == (False, "never")


def _refusal(**changes: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        tokens.CREATE.read(Form({**GOOD, **changes}))
    return caught.value


@pytest.mark.parametrize(
    ("changes", "kind", "field", "message"),
    [
        ({"expires": "soon"}, Invalid, "expires", "Choose an expiry from the list."),
        ({"name": ""}, Invalid, "name", NAME_LENGTH),
        ({"name": "x" * 101}, Invalid, "name", NAME_LENGTH),
        ({"name": "bell\x07"}, Invalid, "name", NAME_NOT_PLAIN),
        ({"user": "no body"}, NotFound, None, "there is no user 'no body'"),
        # Two faults: the one the page checked first is the one it names.
        ({"expires": "soon", "name": ""}, Invalid, "expires", "Choose an expiry"),
    ],
)
def test_what_the_model_refuses_the_page_words_as_before(
    changes: dict[str, str], kind: type[ServiceError], field: str | None, message: str
) -> None:
    refusal = _refusal(**changes)
    assert isinstance(refusal, kind)
    assert refusal.field == field
    assert refusal.message.startswith(message)


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form.model.__name__)
def test_every_field_the_model_can_refuse_has_words(form: FormModel) -> None:  # type: ignore[type-arg]
    texts = {*form.texts, *form.stripped, *form.numbers}
    assert texts | set(form.flags) <= set(form.model.model_fields)
    assert set(form.refusals) == texts


def test_adding_a_user_reads_as_the_page_always_did() -> None:
    body = users.ADD.read(Form({"name": " anna ", "password": ""}))
    assert (body.name, body.role, body.password) == ("anna", "user", None)


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "no body"}, "name", "user name 'no body' is not allowed"),
        ({"name": "anna", "role": "boss"}, "role", "role 'boss' is unknown"),
        ({"name": "anna", "password": "short"}, "password", "password"),
    ],
)
def test_adding_a_user_is_refused_in_the_services_words(
    form: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        users.ADD.read(Form(form))
    assert caught.value.field == field
    assert caught.value.message.startswith(message)


def test_a_role_and_a_password_are_chosen_or_typed() -> None:
    assert users.ROLE.read(Form({"role": "viewer"})).role == "viewer"
    with pytest.raises(Invalid, match="Choose the role admin, user or viewer"):
        users.ROLE.read(Form({}))
    with pytest.raises(Invalid, match="Enter a new password, or generate one"):
        users.PASSWORD.read(Form({"password": ""}))
    with pytest.raises(Invalid) as caught:
        users.PASSWORD.read(Form({"password": "short"}))
    assert caught.value.field == "password"


def test_adding_a_peer_reads_as_the_page_always_did() -> None:
    body = peers.ADD.read(Form({"name": " anna phone ", "user": " ", "public_key": ""}))
    assert (body.name, body.user, body.public_key, body.trusted, body.expires) == (
        "anna phone",
        None,
        None,
        False,
        "never",
    )


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "a/b"}, "name", "peer name 'a/b' is not allowed"),
        ({"name": "phone", "public_key": "abc"}, "public_key", "'abc' is not a WireGuard"),
        ({"name": "phone", "expires": "soon"}, "expires", "Choose an expiry from the list."),
        ({"name": "phone", "user": "no body"}, None, "there is no user 'no body'"),
    ],
)
def test_adding_a_peer_is_refused_in_the_pages_words(
    form: dict[str, str], field: str | None, message: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        peers.ADD.read(Form(form))
    assert caught.value.field == field
    assert caught.value.message.startswith(message)


def test_adding_to_the_allowlist_reads_as_the_page_always_did() -> None:
    form = Form({"network": " 192.0.2.0/24 ", "label": " office ", "confirm_wide": "1"})
    body = allowlist.ADD.read(form)
    assert body.model_dump() == {
        "network": "192.0.2.0/24",
        "label": "office",
        "expires": "never",
        "confirm_lockout": False,
        "confirm_wide": True,
    }
    mine = allowlist.ADD.read(form.but(network="192.0.2.7", label="my address"))
    assert (mine.network, mine.label) == ("192.0.2.7", "my address")


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"network": " "}, "network", "Enter a network or an address to add."),
        ({"network": "1"}, "network", "allowlist entry '1' is not"),
        ({"network": "192.0.2.0/24", "label": "x" * 201}, "label", "label is longer than 200"),
        ({"network": "192.0.2.0/24", "label": "a\x07"}, "label", "label contains control"),
        ({"network": "", "expires": "soon"}, "expires", "Choose an expiry from the list."),
    ],
)
def test_adding_to_the_allowlist_is_refused_in_the_pages_words(
    form: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        allowlist.ADD.read(Form(form))
    assert caught.value.field == field
    assert caught.value.message.startswith(message)


def test_making_a_guest_link_reads_as_the_page_always_did() -> None:
    body = guests.CREATE.read(Form({"name": " installer Jan "}))
    assert body.model_dump() == {
        "name": "installer Jan",
        "role": "viewer",
        "expires": "8h",
        "browsers": 1,
    }


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "Jan", "browsers": "two"}, "browsers", "Give a whole number."),
        ({"name": "", "browsers": "2.0"}, "browsers", "Give a whole number."),
        ({"name": "Jan", "browsers": "99"}, "browsers", "browsers must be 1 to"),
        ({"name": " "}, "name", "give the link a name of 1-"),
        ({"name": "Jan", "role": "admin"}, "role", "role 'admin' is not for guests"),
        ({"name": "", "expires": ""}, "expires", ""),
    ],
)
def test_making_a_guest_link_is_refused_in_the_pages_words(
    form: dict[str, str], field: str, message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        guests.CREATE.read(Form(form))
    assert caught.value.field == field
    assert caught.value.message.startswith(message)
