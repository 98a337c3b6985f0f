"""The admin API's models as the OpenAPI document shows them: every rule a validator checks
is also stated as a pattern, so a client (or schemathesis) generating valid requests from
the document never sends one the API refuses with 422."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gateway.admin import models


def _string_schema(model: type[BaseModel], field: str) -> dict[str, Any]:
    schema = model.model_json_schema()["properties"][field]
    choices = schema.get("anyOf", [schema])
    return next(choice for choice in choices if choice.get("type") == "string")


@pytest.mark.parametrize(
    ("model", "field", "refused"),
    [
        (models.UserAdd, "password", {"name": "anna", "password": "ten chars \x00 and more"}),
        (models.PasswordSet, "password", {"password": "ten chars \x00 and more"}),
        (models.AllowlistAdd, "label", {"network": "192.0.2.0/24", "label": "bell\x07"}),
    ],
)
def test_what_a_validator_refuses_the_document_states_as_a_pattern(
    model: type[BaseModel], field: str, refused: dict[str, Any]
) -> None:
    pattern = _string_schema(model, field).get("pattern")
    assert pattern, f"{model.__name__}.{field} has no pattern in the document"
    with pytest.raises(ValidationError):
        model.model_validate(refused)
