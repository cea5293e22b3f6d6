"""The base of models that travel as JSON, and the strict wire types they use."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, StrictBool
from pydantic.alias_generators import to_camel


def a_json_number(value: Any) -> Any:
    """JSON has numbers: `true` and `"3"` are not counts (pydantic would take both)."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number")
    return value


# Wire types that take only what they say: a count is a number (3 or 3.0), seconds are a
# number, a flag is true or false. Constraints go inside the Annotated of a nullable count,
# so the JSON Schema says "minimum" (pydantic writes "ge" otherwise).
Count = Annotated[int, BeforeValidator(a_json_number)]
Seconds = Annotated[float, Strict()]
Flag = StrictBool


class Wire(BaseModel):
    """Base for models that travel as camelCase JSON and reject unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
