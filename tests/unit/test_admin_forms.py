"""Page forms are read through the JSON API's input models
(:mod:`gateway.admin.pages.forms`): what the model refuses, the page words as it words the
field, in the order the page checks them."""

from __future__ import annotations

import pytest

from gateway.admin.pages import tokens
from gateway.admin.pages.common import Form
from gateway.admin.pages.forms import FormModel
from gateway.services.api_tokens import NAME_LENGTH, NAME_NOT_PLAIN
from gateway.services.errors import Invalid, NotFound, ServiceError

FORMS: list[FormModel] = [tokens.CREATE]  # type: ignore[type-arg]

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
    texts = {*form.texts, *form.stripped}
    assert texts | set(form.flags) == set(form.model.model_fields)
    assert set(form.refusals) == texts
