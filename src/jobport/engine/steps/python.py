"""The `python` step: call `module:function(**kwargs)` inside the worker process."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from jobport.engine.steps import StepContext, StepFailed, check_keys

_ALLOWED = ("callable", "kwargs")


def validate(config: dict[str, Any]) -> None:
    check_keys("python", config, _ALLOWED)
    target = config.get("callable")
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise ValueError("callable must be 'module:function', e.g. 'mypkg.reports:top_customers'")
    if not isinstance(config.get("kwargs", {}), dict):
        raise ValueError("kwargs must be an object")


def resolve(target: str) -> Callable[..., Any]:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StepFailed(f"cannot import {module_name!r}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise StepFailed(f"{module_name!r} has no attribute {attr!r}") from exc
    if not callable(obj):
        raise StepFailed(f"{target!r} is not callable")
    return obj  # type: ignore[no-any-return]


def run(config: dict[str, Any], ctx: StepContext) -> Any:
    function = resolve(config["callable"])
    kwargs = dict(config.get("kwargs", {}))
    if "jobport" in inspect.signature(function).parameters:
        kwargs["jobport"] = ctx
    return function(**kwargs)
