"""Schemathesis hooks for tests/api/test_fuzz.py: what the fuzzer must leave alone, and the
few places where a check expects more than a JSON Schema can say.

Loaded by `schemathesis run` (tests/api/schemathesis.toml names this module); reads the
fuzzer's own API key from JOBPORT_FUZZ_KEY.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

# The world the document's examples made (tests/api/openapi_examples.py): the fuzzer may
# read it, run it and change it, but not delete or rename it, or later cases lose their
# target and the run paths stop being fuzzed.
WORLD = {"project": "example", "job": "hello", "name": "nightly", "role": "operators"}


def _own_client_id() -> str:
    key = os.environ.get("JOBPORT_FUZZ_KEY", "")
    return key.split("_")[1] if key.count("_") >= 2 else ""


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Keep the fuzzer's own key working, and the examples' world in place."""
    params = case.path_parameters or {}
    own = _own_client_id()
    if case.method.upper() != "GET" and own and own in params.values():
        # Rotating, disabling, firewalling or deleting the key we call with (or taking it
        # out of Administrator) would make every later case a 401 or 403.
        return False
    if case.method.upper() == "DELETE" and params:
        last = list(params.values())[-1]
        return bool(last not in WORLD.values())
    return True


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A valid PATCH that would rename a thing of the world renames it to its own name (the
    field is still sent). Invalid ones stay as generated: the server refuses them anyway,
    and changing them could make them valid."""
    params = case.path_parameters or {}
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and case.method.upper() == "PATCH" and isinstance(case.body, dict) and params:
        kind, value = list(params.items())[-1]
        if WORLD.get(kind) == value and "name" in case.body:
            case.body["name"] = value
    return case


# Where positive data is refused (422) for a rule JSON Schema cannot state. Each entry:
# error code -> (fields the rule is about, as a regex; why the schema cannot say it).
# Only this check, only 422, only these codes and fields: anything else still fails.
UNSTATABLE: dict[str, tuple[str, str]] = {
    # The input guard refuses NUL and lone surrogates in any string (documented in every
    # 422; tests/api/test_hostile_input.py); a schema would need a pattern on every string.
    # The reasons below tell these from a plain shape error, which still fails.
    "invalid_request": (r"", "NUL, a lone surrogate"),
    # Cursors are tokens the server issued; any other string is refused.
    "invalid_cursor": (r"^$", "a cursor the server did not issue"),
    # A step's config depends on its kind, and its templates must parse; `needs` must name
    # other steps without a cycle, one step at most is the result; parametersSchema is a
    # JSON Schema, which the defaults (`parameters`) must meet. A foreach names exactly one
    # source, a step source names a step and leaves one to run per item, a sql or http
    # source is that step kind's config, a query uses the operators mongoquery knows.
    "invalid_job": (
        r"^(steps(\.\d+\.(config|kind))?|parametersSchema|body"
        r"|foreach(\.source(\.(sql|http))?|\.query)?)$",
        "see above",
    ),
    # One run's foreach query or source: the job's foreach rules, for a job that has one.
    "invalid_foreach": (r"^foreach(\..+)?$", "the job's foreach"),
    # Crons, time zones, dates, one of crons/runAt, the body name matching the path, and
    # parameters the job declares.
    "invalid_schedule": (
        r"^(crons(\.\d+)?|runAt|timeZone|startDate|endDate|name|parameters(\..+)?)$",
        "calendar rules",
    ),
    # Relative to the present.
    "invalid_expiry": (r"^expiresAt$", "must be in the future"),
    "invalid_rotation": (r"^oldSecretValidUntil$", "must not be in the past"),
    "invalid_range": (r"^to$", "from before to, not in the future"),
    "range_too_large": (r"^to$", "too many fire times in the range"),
    # IP ranges: both ends of one version, the end not below the start.
    "invalid_firewall_rule": (r"^firewallRules(\..+)?$", "an address range"),
    # A connection's URL must name a database jobport opens (sqlite, postgresql, mysql,
    # mariadb) or be an http(s) URL with a host; `***` stands for a stored password or
    # header value; header names are HTTP tokens and values one line.
    "invalid_connection": (r"^(url|headers(\..*)?)$", "a database or http(s) URL; headers"),
    # Parameters must be the ones the job declares, meeting its parametersSchema.
    "unknown_parameter": (r"^parameters\..*$", "the job's declared parameters"),
    "invalid_parameters": (r"^parameters(\..+)?$", "the job's parametersSchema"),
}
# invalid_request is the shape check's code too: only these reasons are the unstatable ones.
# (A job's step graph and parametersSchema are the service's `invalid_job`, above.)
_UNSTATABLE_REQUEST = re.compile(r"NUL characters|surrogate")


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Drop a positive-data refusal only when it is one of UNSTATABLE's rules."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    try:
        error = response.json()
    except ValueError:
        return True
    rule = UNSTATABLE.get(error.get("error"))
    if rule is None:
        return True
    details = error.get("details") or [{"field": "", "reason": error.get("message", "")}]
    for detail in details:
        field, reason = str(detail.get("field", "")), str(detail.get("reason", ""))
        if not re.match(rule[0], field):
            return True
        if error["error"] == "invalid_request" and not _UNSTATABLE_REQUEST.search(reason):
            return True
    _note_dropped(case, error)
    return False


def _note_dropped(case: Any, error: dict[str, Any]) -> None:
    """One line per dropped refusal in JOBPORT_FUZZ_DROPPED, for the test to summarise."""
    path = os.environ.get("JOBPORT_FUZZ_DROPPED")
    if path:
        fields = sorted({str(d.get("field", "")) for d in error.get("details") or []})
        line = {
            "operation": f"{case.method} {case.path}",
            "error": error["error"],
            "fields": fields,
        }
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")
