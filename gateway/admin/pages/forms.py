"""A page form read through the JSON API's own input model (:mod:`gateway.admin.models`),
so the API and the page accept the same input.

A browser sends text only: a checkbox is there (``on``) or absent, an empty text field is
the empty string. :meth:`FormModel.read` turns the form into the model's input - flags to
booleans, an empty optional field left out so the model's default applies - and validates
it strictly, like a JSON body.

What the model refuses becomes, in this one place, the page's usual refusal: a
:class:`~gateway.services.errors.ServiceError` for the first field at fault (in the order the
page names them), worded as the page words that field - the same sentence the service
says for it, in the reader's language - so the form shows it as it shows every refusal
(:func:`gateway.admin.pages.common.refused`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from gateway.admin.pages.common import Form
from gateway.services.errors import Invalid, ServiceError

#: How a page words a refused field: from the text the person typed, and pydantic's error
#: type (``string_too_long``, ``string_pattern_mismatch``...), when the wording depends on it.
Wording = Callable[[str, str], ServiceError]


@dataclass(frozen=True)
class FormModel[M: BaseModel]:
    """How one page form maps onto ``model``.

    ``texts`` are read as typed, ``stripped`` with surrounding spaces removed, ``flags`` as
    checkboxes, ``numbers`` as whole numbers (text that is none is refused at once, with
    the error type ``int_parsing``, as the page always refused it first). A text the form
    does not send reads as its ``defaults`` entry (as the page always read it) or as empty;
    an ``optional`` one left empty is left out, so the model's default applies.
    ``refusals`` words each field the model can refuse, in the order the page checks them.
    """

    model: type[M]
    refusals: Mapping[str, Wording]
    texts: tuple[str, ...] = ()
    stripped: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    defaults: Mapping[str, str] = field(default_factory=dict)

    def read(self, form: Form) -> M:
        data: dict[str, object] = {}
        for name in (*self.texts, *self.stripped):
            value = form.text(name, self.defaults.get(name, ""))
            value = value.strip() if name in self.stripped else value
            if value or name not in self.optional:
                data[name] = value
        data.update({name: form.flag(name) for name in self.flags})
        for name in self.numbers:
            text = form.text(name, self.defaults.get(name, ""))
            try:
                data[name] = int(text)
            except ValueError:
                raise self.refusals[name](text, "int_parsing") from None
        try:
            return self.model.model_validate(data)
        except ValidationError as error:
            raise self.refusal(error, form) from None

    def refusal(self, error: ValidationError, form: Form) -> ServiceError:
        faults = {str(fault["loc"][0]): fault for fault in error.errors() if fault["loc"]}
        for name, wording in self.refusals.items():
            if name in faults:
                text = form.text(name, self.defaults.get(name, ""))
                return wording(
                    text.strip() if name in self.stripped else text, faults[name]["type"]
                )
        # Only a field no refusal words (a test checks there is none) gets pydantic's words.
        fault = error.errors()[0]
        return Invalid(str(fault["msg"]), field=str(fault["loc"][0]) if fault["loc"] else None)


def service_words(check: Callable[[str], object]) -> Wording:
    """Word a refused field as the service's own check of it does (``users.check_name``):
    the page then says exactly what the service would have said."""

    def wording(text: str, kind: str) -> ServiceError:
        try:
            check(text)
        except ServiceError as refusal:
            return refusal
        return Invalid(kind)  # the model and the service disagree: say which rule it was

    return wording
