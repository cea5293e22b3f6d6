"""Wire shapes v1 shares: request models, times, pages; each resource renders its own."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from jobport.domain.pages import Page
from jobport.services.runtime import Runtime


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _drop_defaults(schema: dict[str, Any]) -> None:
    # A field left out of a patch keeps its value: no default applies, so none is shown.
    for field in schema.get("properties", {}).values():
        field.pop("default", None)


class _Patch(Body):
    model_config = ConfigDict(json_schema_extra=_drop_defaults)


def patch_model(name: str, spec: type[BaseModel], doc: str) -> type[BaseModel]:
    """The body of a PATCH of `spec`: its fields, each optional, with their types and
    constraints, so the two never differ. The document shows it; the service merges the
    fields given into what is stored and checks the whole, as on create."""
    fields: dict[str, Any] = {}
    for field_name, info in spec.model_fields.items():
        optional = copy.copy(info)
        optional.default, optional.default_factory = None, None
        fields[field_name] = (info.annotation, optional)
    return create_model(name, __base__=_Patch, __doc__=doc, **fields)


DESCRIPTION_MAX = 10_000  # characters, for every description a caller writes


class ProjectCreate(Body):
    name: str
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


class ProjectPatch(Body):
    name: str | None = None
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class ForEachOverride(Body):
    """A foreach job's items for one run: another filter and/or another source."""

    query: dict[str, Any] | None = None
    source: dict[str, Any] | None = None


class ExecuteRequest(Body):
    parameters: dict[str, Any] = Field(default_factory=dict)
    mode: str = "full"
    execution_id: str | None = None
    # The template context (`{{ context.x }}`), over the job's own `context`.
    context: dict[str, Any] | None = None
    foreach: ForEachOverride | None = None


async def runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop on every
    # request (a sixth of the time spent resolving an execute's dependencies).
    return request.app.state.runtime  # type: ignore[no-any-return]


def _not_a_number(value: Any) -> Any:
    """A date-time is written as one (ISO 8601); pydantic would read 0.5 as a Unix time."""
    if isinstance(value, int | float) or (
        isinstance(value, str) and _NUMBER.fullmatch(value.strip()) is not None
    ):
        raise ValueError("must be a date-time such as 2026-11-30T09:00:00Z, not a number")
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("out of range: in UTC it must fall within the years 1 to 9999") from None


# Every date-time a caller sends (query or body): read as UTC when it has no offset, and in
# range once in UTC, so the store never meets one it cannot convert (a 422 names the field).
UtcDateTime = Annotated[dt.datetime, BeforeValidator(_not_a_number), AfterValidator(_utc)]
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def page(p: Page, render: Any) -> dict[str, Any]:
    return {"items": [render(r) for r in p.items], "nextCursor": p.next_cursor}
