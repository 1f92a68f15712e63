"""Complete webhook payloads for githubkit's models, built from a few overrides.

githubkit validates a delivery against GitHub's full schema, so a hand-made `{"action": ...}` dict
is refused. `payload(M.WebhookPullRequestClosed, {...})` fills every required field of the model
(recursively) with a plausible value and deep-merges what the test cares about on top.
"""

from __future__ import annotations

import datetime
import enum
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from githubkit.utils import Unset
from pydantic import BaseModel

DATETIME = "2026-01-01T00:00:00Z"


def payload(model_cls: type[BaseModel], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-ready dict valid for `model_cls`, with `overrides` deep-merged into it."""
    return _complete(model_cls, overrides or {})


def _complete(model: type[BaseModel], overrides: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        given = key if key in overrides else name if name in overrides else None
        if given is not None:
            out[key] = _merge(field.annotation, overrides[given])
        elif field.is_required():
            out[key] = _fill(field.annotation)
    # Keys the model does not declare are kept as given (pydantic ignores them).
    out.update({k: v for k, v in overrides.items() if k not in out and k not in model.model_fields})
    return out


def _merge(tp: Any, value: Any) -> Any:
    """A dict on a model field recurses into the model; a list of dicts on a list-of-model field
    completes each item; anything else replaces the default."""
    if isinstance(value, dict):
        model = _model(tp)
        return _complete(model, value) if model is not None else value
    if isinstance(value, list):
        item = _model(_item(tp))
        if item is not None:
            return [_complete(item, v) if isinstance(v, dict) else v for v in value]
    return value


def _options(tp: Any) -> list[Any]:
    """The members of a Union/Optional/Annotated worth filling: not None, not githubkit's UNSET."""
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _options(get_args(tp)[0])
    if origin in (Union, types.UnionType):
        return [o for a in get_args(tp) for o in _options(a)]
    if tp is type(None) or tp is Unset or (origin is Literal and all(isinstance(a, Unset) for a in get_args(tp))):
        return []
    return [tp]


def _model(tp: Any) -> type[BaseModel] | None:
    return next((o for o in _options(tp) if isinstance(o, type) and issubclass(o, BaseModel)), None)


def _item(tp: Any) -> Any:
    """The item type of a list field (through Optional/UNSET), or None."""
    for option in _options(tp):
        if get_origin(option) is list:
            return get_args(option)[0]
    return None


def _fill(tp: Any) -> Any:
    options = _options(tp)
    if not options:
        return None
    # A model or a literal says the most about the shape GitHub sends: prefer them.
    tp = next((o for o in options if get_origin(o) is Literal
               or (isinstance(o, type) and issubclass(o, BaseModel))), options[0])
    origin = get_origin(tp)
    if origin is Literal:
        return get_args(tp)[0]
    if origin is list:
        return []
    if origin is dict:
        return {}
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return _complete(tp, {})
        if issubclass(tp, enum.Enum):
            return next(iter(tp)).value
        if issubclass(tp, bool):  # before int: bool is an int
            return False
        if issubclass(tp, int):
            return 1
        if issubclass(tp, float):
            return 1.0
        if issubclass(tp, datetime.datetime):
            return DATETIME
        if issubclass(tp, datetime.date):
            return DATETIME[:10]
    return "x"  # str, and whatever else accepts a string
