"""One exception type per failure kind; the kind is stored with the attempt so "why" is precise."""

from __future__ import annotations

from typing import Any


class BadInput(Exception):
    """The request itself is wrong (unknown branch, unknown ref): nothing was started."""


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds (key.path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {key}: {msg}" for key, msg in problems))


class BackportFailure(Exception):
    """An attempt failed. Subclasses name the kind; `stage` says which step failed."""

    kind = "internal"

    def __init__(self, reason: str, *, stage: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage or self.default_stage
        self.details = details or {}

    default_stage = "internal"


class NotFound(BackportFailure):
    kind = "not_found"
    default_stage = "resolve_source"


class NotMerged(BackportFailure):
    kind = "not_merged"
    default_stage = "policy"


class AlreadyPresent(BackportFailure):
    kind = "already_present"
    default_stage = "policy"


class Circular(BackportFailure):
    kind = "circular"
    default_stage = "policy"


class Conflict(BackportFailure):
    kind = "conflict"
    default_stage = "resolving"


class VerifyFailed(BackportFailure):
    kind = "verify"
    default_stage = "verifying"


class PushFailed(BackportFailure):
    kind = "push"
    default_stage = "push"


class Internal(BackportFailure):
    kind = "internal"
    default_stage = "internal"


class Cancelled(BackportFailure):
    kind = "cancelled"
    default_stage = "cancelled"


FAILURE_KINDS = {cls.kind: cls for cls in (NotFound, NotMerged, AlreadyPresent, Circular, Conflict,
                                           VerifyFailed, PushFailed, Internal, Cancelled)}
