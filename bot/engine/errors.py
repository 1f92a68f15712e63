"""One exception type per failure kind; the kind is stored with the attempt so "why" is precise."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """Where an attempt failed (or was interrupted): a step of the engine or of the bot around it."""

    RESOLVE_SOURCE = "resolve_source"
    POLICY = "policy"
    PICKING = "picking"
    CONFLICTED = "conflicted"
    RESOLVING = "resolving"
    VERIFYING = "verifying"
    PUSH = "push"
    OPENING_PR = "opening_pr"
    CI = "ci"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


class BadInput(Exception):
    """The request itself is wrong (unknown branch, unknown ref): nothing was started."""


class BackportFailure(Exception):
    """An attempt failed. Subclasses name the kind; `stage` says which step failed."""

    kind = "internal"

    default_stage = Stage.INTERNAL

    def __init__(self, reason: str, *, stage: Stage | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage: Stage = stage or self.default_stage
        self.details = details or {}


class NotFound(BackportFailure):
    kind = "not_found"
    default_stage = Stage.RESOLVE_SOURCE


class FetchFailed(BackportFailure):
    """The repository's remote could not be fetched: nothing was started."""

    kind = "fetch"
    default_stage = Stage.RESOLVE_SOURCE


class NotMerged(BackportFailure):
    kind = "not_merged"
    default_stage = Stage.POLICY


class AlreadyPresent(BackportFailure):
    kind = "already_present"
    default_stage = Stage.POLICY


class Circular(BackportFailure):
    kind = "circular"
    default_stage = Stage.POLICY


class Conflict(BackportFailure):
    kind = "conflict"
    default_stage = Stage.RESOLVING


class VerifyFailed(BackportFailure):
    kind = "verify"
    default_stage = Stage.VERIFYING


class PushFailed(BackportFailure):
    kind = "push"
    default_stage = Stage.PUSH


class ServiceFailed(BackportFailure):
    """An outside service (the forge) failed; the reason says which and whether to try again."""

    kind = "service"
    default_stage = Stage.OPENING_PR


class Internal(BackportFailure):
    kind = "internal"
    default_stage = Stage.INTERNAL
