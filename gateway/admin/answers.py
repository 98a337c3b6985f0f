"""A record's answer model, made from the record, and the one converter from one to the
other (:func:`shown`).

A record the services keep is defined once, as the service's frozen dataclass. An answer
that shows it in the record's own order extends that dataclass (see
:mod:`gateway.admin.models`). An answer that lists the record's fields in another order,
or places computed values between them, cannot be a subclass (a subclass can only
append): :func:`answer_of` makes it from the record's fields instead, with the order, the
fields left out or renamed and the values added stated beside it, and every type taken
from the record.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, cast

from pydantic import BaseModel, Field, create_model

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class RecordAnswer(BaseModel):
    # The base of every model :func:`answer_of` makes. (No docstring: it would become
    # the schema's description.)

    # Which record field each of the answer's fields shows, by the answer's names.
    record_fields: ClassVar[Mapping[str, str]] = {}

    if TYPE_CHECKING:
        # The record's fields are not declared in the class body the type checker reads.
        def __getattr__(self, name: str) -> Any: ...


def answer_of[Answer: RecordAnswer](
    record: type[DataclassInstance],
    order: Sequence[str],
    *,
    hidden: Collection[str] = (),
    renamed: Mapping[str, str] | None = None,
    described: Mapping[str, str] | None = None,
) -> Callable[[type[Answer]], type[Answer]]:
    """Make the decorated class's answer model from ``record``: its fields in ``order``
    (the answer's names), each either a field of the record, with the record's type, or a
    field the class declares (what only the admin app knows). ``hidden``: the record's
    fields the answer never shows; ``renamed``: record name -> answer name; ``described``:
    the document's description of a record field, by answer name.

    Every record field must be shown or hidden and every declared field placed: a field
    the record gains stops the import until someone decides, and a misspelt name cannot
    pass."""
    names = [field.name for field in dataclasses.fields(record)]
    renames, descriptions = renamed or {}, described or {}
    shown = {renames.get(name, name): name for name in names if name not in hidden}
    types = typing.get_type_hints(record, include_extras=True)

    def make(added: type[Answer]) -> type[Answer]:
        declared = added.model_fields
        faults = {
            "not in the record": (set(hidden) | set(renames)) - set(names),
            "neither placed nor hidden": (set(shown) | set(declared)) ^ set(order),
            "both shown and declared": set(shown) & set(declared),
            "described but not shown": set(descriptions) - set(shown),
        }
        if any(faults.values()):
            raise TypeError(f"{added.__name__}: {faults}")
        fields: dict[str, Any] = {}
        for name in order:
            if name in declared:
                fields[name] = Annotated[declared[name].annotation, declared[name]]
            elif name in descriptions:
                fields[name] = Annotated[types[shown[name]], Field(description=descriptions[name])]
            else:
                fields[name] = types[shown[name]]
        model = create_model(
            added.__name__, __base__=RecordAnswer, __module__=added.__module__, **fields
        )
        model.record_fields = {name: shown[name] for name in order if name in shown}
        return cast(type[Answer], model)

    return make


def shown[Out](out: Callable[..., Out], record: DataclassInstance, **added: object) -> Out:
    """``record`` as its ``*Out`` model, with the values only the admin app knows or knows
    better (``added``). A model made by :func:`answer_of` names the
    record field each of its fields shows; a model that extends the record shows them all."""
    sources: Mapping[str, str] = (
        out.record_fields
        if isinstance(out, type) and issubclass(out, RecordAnswer)
        else {field.name: field.name for field in dataclasses.fields(record)}
    )
    return out(**{name: getattr(record, source) for name, source in sources.items()} | added)
