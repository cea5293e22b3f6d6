"""Job parameters: what a caller may pass, checked against the job's defaults or its schema.

A job without `parametersSchema` accepts exactly the parameters it declares with defaults.
A job with one lets the schema decide (JSON Schema, draft 2020-12 unless `$schema` says
otherwise): the merged values (defaults, then the caller's) must validate, and
`"additionalProperties": false` forbids undeclared names.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator


def check_schema(schema: dict[str, Any]) -> None:
    """Raise ValueError unless `schema` is a valid JSON Schema that needs nothing remote."""
    _check_schema(_key(schema))


def check_defaults(schema: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Raise ValueError if a default breaks the schema (missing required ones are the
    caller's to pass, so `required` is not checked here)."""
    _check_defaults(_key(schema), _key(defaults))


# A job's spec is validated on every start, claim and end of its runs: the checks of its
# schema and defaults are remembered by their JSON text (a failed one raises again).
@functools.lru_cache(maxsize=512)
def _check_schema(key: str) -> None:
    schema = json.loads(key)
    remote = [ref for ref in _refs(schema) if not ref.startswith("#")]
    if remote:
        raise ValueError(f"only local references ('#/...') are allowed, not {remote[0]!r}")
    try:
        _validator(key)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        at = f" at {where}" if where else ""
        raise ValueError(f"not a valid JSON Schema{at}: {exc.message}") from None
    except Exception as exc:  # a schema jsonschema cannot even load
        raise ValueError(f"not a valid JSON Schema: {exc}") from None


@functools.lru_cache(maxsize=512)
def _check_defaults(schema_key: str, defaults_key: str) -> None:
    for problem in _schema_problems(json.loads(schema_key), json.loads(defaults_key)):
        if problem["keyword"] != "required":
            raise ValueError(
                f"the default of {problem['field']} does not meet parametersSchema: "
                f"{problem['reason']}"
            )


def problems(
    defaults: dict[str, Any], schema: dict[str, Any] | None, given: dict[str, Any]
) -> list[dict[str, str]]:
    """What is wrong with a caller's parameters, as [{"field", "reason"}]; empty if nothing."""
    if schema is None:
        return [
            {"field": f"parameters.{name}", "reason": "not declared by the job"}
            for name in sorted(set(given) - set(defaults))
        ]
    return [
        {"field": p["field"], "reason": p["reason"]}
        for p in _schema_problems(schema, {**defaults, **given})
    ]


def _schema_problems(schema: dict[str, Any], values: dict[str, Any]) -> list[dict[str, str]]:
    try:
        errors = sorted(_validator(_key(schema)).iter_errors(values), key=lambda e: e.json_path)
        return [
            {
                "field": "parameters" + "".join(f".{p}" for p in error.absolute_path),
                "reason": error.message,
                "keyword": str(error.validator),
            }
            for error in errors
        ]
    except Exception as exc:  # e.g. a reference that does not resolve: the job's fault
        return [
            {
                "field": "parameters",
                "reason": f"the job's parametersSchema cannot be evaluated: {exc}",
                "keyword": "schema",
            }
        ]


def _key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True)


@functools.lru_cache(maxsize=512)
def _validator(key: str) -> Validator:
    schema = json.loads(key)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)  # type: ignore[call-arg]


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k in ("$ref", "$dynamicRef") and isinstance(v, str)]
        for item in value.values():
            found.extend(_refs(item))
        return found
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []
