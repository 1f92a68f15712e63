"""SQLite state through sqlite-utils (WAL): requests, attempts, an append-only event log per
attempt, and how each conflict hunk was resolved."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.states import WORKING, State

SCHEMA_VERSION = 1


def now() -> float:
    return time.time()


def owner_id() -> str:
    """Who is working on an attempt: host and pid, so a dead owner can be detected."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_alive(owner: str | None) -> bool:
    if not owner:
        return False
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True  # another machine's process: not ours to judge
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class HunkRecord:
    path: str
    index: int
    resolved_by: str  # rerere | whitespace | same-change | context-moved | llm | unresolved
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    attempt_id: int
    at: float
    state: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    id: int
    request_id: int
    repo: str
    source: str
    branch: str
    state: str
    stage: str | None
    failure_kind: str | None
    reason: str | None
    source_commits: list[str]
    pr_number: int | None
    result_branch: str | None
    result_commit: str | None
    worktree: str | None
    conflicts: list[dict[str, Any]]
    prerequisites: list[dict[str, Any]]
    warnings: list[str]
    needs_approval: bool
    message: str | None
    approval_message: str | None
    pr_url: str | None
    backport_pr: int | None
    ci: str | None  # waiting | passed | failed, when CI verifies the backport
    llm_usage: dict[str, Any]  # calls, tokens, seconds the LLM spent on this attempt
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Attempt:
        return cls(
            id=row["id"], request_id=row["request_id"], repo=row["repo"], source=row["source"],
            branch=row["branch"], state=row["state"], stage=row["stage"],
            failure_kind=row["failure_kind"], reason=row["reason"],
            source_commits=json.loads(row["source_commits"] or "[]"), pr_number=row["pr_number"],
            result_branch=row["result_branch"], result_commit=row["result_commit"],
            worktree=row["worktree"], conflicts=json.loads(row["conflicts"] or "[]"),
            prerequisites=json.loads(row["prerequisites"] or "[]"), warnings=json.loads(row["warnings"] or "[]"),
            needs_approval=bool(row["needs_approval"]), message=row["message"],
            approval_message=row["approval_message"], pr_url=row["pr_url"], backport_pr=row["backport_pr"],
            ci=row["ci"], llm_usage=json.loads(row["llm"] or "{}"), created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class Store:
    """Thread-safe: one connection guarded by a lock; other processes share the file via WAL."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._listeners: list[Callable[[int, State, dict[str, Any]], None]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.enable_wal()
        self.lock = threading.RLock()
        self._create()

    def _create(self) -> None:
        with self.lock:
            self.db["requests"].create(
                {"id": int, "repo": str, "source": str, "branches": str, "requested_by": str,
                 "origin": str, "channel": str, "thread": str, "summary": str, "created_at": float},
                pk="id", if_not_exists=True,
            )
            self.db["attempts"].create(
                {"id": int, "request_id": int, "repo": str, "source": str, "branch": str, "state": str,
                 "stage": str, "failure_kind": str, "reason": str, "source_commits": str,
                 "pr_number": int, "result_branch": str, "result_commit": str, "worktree": str,
                 "owner": str, "conflicts": str, "prerequisites": str, "warnings": str, "needs_approval": int,
                 "message": str, "approval_message": str, "pr_url": str, "backport_pr": int, "ci": str, "llm": str,
                 "created_at": float,
                 "updated_at": float},
                pk="id", foreign_keys=[("request_id", "requests", "id")], if_not_exists=True,
            )
            self.db["events"].create(
                {"id": int, "attempt_id": int, "at": float, "state": str, "detail": str},
                pk="id", foreign_keys=[("attempt_id", "attempts", "id")], if_not_exists=True,
            )
            self.db["hunks"].create(
                {"id": int, "attempt_id": int, "path": str, "hunk": int, "resolved_by": str, "detail": str},
                pk="id", foreign_keys=[("attempt_id", "attempts", "id")], if_not_exists=True,
            )
            self.db["digests"].create({"id": int, "repo": str, "at": float, "head": str, "channel": str,
                                       "message": str, "candidates": int}, pk="id", if_not_exists=True)
            self.db["candidates"].create({"message": str, "repo": str, "key": str, "commit": str, "branches": str,
                                          "security": int, "channel": str, "thread": str, "at": float},
                                         pk="message",
                                         if_not_exists=True)
            self.db["dismissals"].create({"repo": str, "key": str, "by": str, "at": float}, pk=("repo", "key"),
                                         if_not_exists=True)
            self.db["batch_items"].create({"id": int, "repo": str, "branch": str, "key": str, "state": str,
                                           "reason": str, "added_by": str, "at": float}, pk="id", if_not_exists=True)
            self.db["attempts"].create_index(["repo", "source", "branch"], if_not_exists=True)
            self.db["events"].create_index(["attempt_id"], if_not_exists=True)
            self.db["hunks"].create_index(["attempt_id"], if_not_exists=True)

    # --- writing -------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[int, State, dict[str, Any]], None]) -> None:
        """Call `listener(attempt_id, state, detail)` after every transition (from any thread)."""
        self._listeners.append(listener)

    def add_request(self, repo: str, source: str, branches: list[str], requested_by: str, origin: str,
                    channel: str | None = None, thread: str | None = None) -> int:
        with self.lock:
            table = self.db["requests"].insert(
                {"repo": repo, "source": source, "branches": json.dumps(branches), "requested_by": requested_by,
                 "origin": origin, "channel": channel, "thread": thread, "created_at": now()}
            )
            return int(table.last_pk)

    def request(self, request_id: int) -> dict[str, Any]:
        with self.lock:
            return dict(self.db["requests"].get(request_id))

    def update_request(self, request_id: int, **columns: Any) -> None:
        with self.lock:
            self.db["requests"].update(request_id, columns)

    def add_attempt(self, request_id: int, repo: str, source: str, branch: str) -> int:
        t = now()
        with self.lock:
            table = self.db["attempts"].insert(
                {"request_id": request_id, "repo": repo, "source": source, "branch": branch,
                 "state": State.REQUESTED.value, "needs_approval": 0, "created_at": t, "updated_at": t}
            )
            attempt_id = int(table.last_pk)
            self._event(attempt_id, State.REQUESTED, {})
            return attempt_id

    def _event(self, attempt_id: int, state: State | str, detail: dict[str, Any]) -> None:
        self.db["events"].insert(
            {"attempt_id": attempt_id, "at": now(), "state": str(state), "detail": json.dumps(detail)}
        )

    def transition(self, attempt_id: int, state: State, detail: dict[str, Any] | None = None,
                   **columns: Any) -> None:
        """Move an attempt to `state`, append the event, and update other columns at once."""
        updates: dict[str, Any] = {"state": state.value, "updated_at": now()}
        for key, value in columns.items():
            updates[key] = json.dumps(value) if isinstance(value, list | dict) else value
        if state in WORKING:
            updates.setdefault("owner", owner_id())
        with self.lock, self.db.conn:
            self.db["attempts"].update(attempt_id, updates)
            self._event(attempt_id, state, detail or {})
        for listener in self._listeners:
            listener(attempt_id, state, detail or {})

    def note(self, attempt_id: int, detail: dict[str, Any]) -> None:
        """An event that records a fact without changing the state."""
        with self.lock:
            state = self.db["attempts"].get(attempt_id)["state"]
            self._event(attempt_id, state, detail)

    def update(self, attempt_id: int, **columns: Any) -> None:
        updates = {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in columns.items()}
        with self.lock:
            self.db["attempts"].update(attempt_id, {**updates, "updated_at": now()})

    def record_hunks(self, attempt_id: int, hunks: list[HunkRecord]) -> None:
        with self.lock, self.db.conn:
            self.db["hunks"].delete_where("attempt_id = ?", [attempt_id])
            self.db["hunks"].insert_all(
                {"attempt_id": attempt_id, "path": h.path, "hunk": h.index, "resolved_by": h.resolved_by,
                 "detail": json.dumps(h.detail)} for h in hunks
            )

    # --- reading -------------------------------------------------------------------------------

    def attempt(self, attempt_id: int) -> Attempt:
        with self.lock:
            return Attempt.from_row(self.db["attempts"].get(attempt_id))

    def attempts(self, repo: str, source: str | None = None, branch: str | None = None) -> list[Attempt]:
        where, params = ["repo = ?"], [repo]
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if branch is not None:
            where.append("branch = ?")
            params.append(branch)
        with self.lock:
            rows = self.db["attempts"].rows_where(" and ".join(where), params, order_by="id")
            return [Attempt.from_row(r) for r in rows]

    def latest(self, repo: str, source: str, branch: str) -> Attempt | None:
        found = self.attempts(repo, source, branch)
        return found[-1] if found else None

    def events(self, attempt_id: int) -> list[Event]:
        with self.lock:
            rows = self.db["events"].rows_where("attempt_id = ?", [attempt_id], order_by="id")
            return [Event(r["attempt_id"], r["at"], r["state"], json.loads(r["detail"])) for r in rows]

    def hunks(self, attempt_id: int) -> list[HunkRecord]:
        with self.lock:
            rows = self.db["hunks"].rows_where("attempt_id = ?", [attempt_id], order_by="id")
            return [HunkRecord(r["path"], r["hunk"], r["resolved_by"], json.loads(r["detail"])) for r in rows]

    def in_state(self, *states: State) -> list[Attempt]:
        placeholders = ",".join("?" for _ in states)
        with self.lock:
            rows = self.db["attempts"].rows_where(f"state in ({placeholders})", [s.value for s in states],
                                                  order_by="id")
            return [Attempt.from_row(r) for r in rows]

    def by_message(self, message_id: str) -> Attempt | None:
        """The attempt whose progress or approval message this is."""
        with self.lock:
            rows = list(self.db["attempts"].rows_where("message = ? or approval_message = ?",
                                                       [message_id, message_id], order_by="id desc", limit=1))
        return Attempt.from_row(rows[0]) if rows else None

    def all_attempts(self) -> list[Attempt]:
        with self.lock:
            return [Attempt.from_row(r) for r in self.db["attempts"].rows_where(order_by="id")]

    def all_hunks(self) -> list[HunkRecord]:
        with self.lock:
            return [HunkRecord(r["path"], r["hunk"], r["resolved_by"], json.loads(r["detail"]))
                    for r in self.db["hunks"].rows_where()]

    # --- digests ---------------------------------------------------------------------------------

    def last_digest(self, repo: str) -> dict[str, Any] | None:
        with self.lock:
            rows = list(self.db["digests"].rows_where("repo = ?", [repo], order_by="id desc", limit=1))
        return rows[0] if rows else None

    def add_digest(self, repo: str, head: str, channel: str, message: str, candidates: int) -> None:
        with self.lock:
            self.db["digests"].insert({"repo": repo, "at": now(), "head": head, "channel": channel,
                                       "message": message, "candidates": candidates})

    def add_candidate(self, message: str, repo: str, key: str, commit: str, branches: list[str], channel: str,
                      thread: str | None, security: bool = False) -> None:
        with self.lock:
            self.db["candidates"].insert({"message": message, "repo": repo, "key": key, "commit": commit,
                                          "branches": json.dumps(branches), "security": int(security),
                                          "channel": channel, "thread": thread, "at": now()}, replace=True)

    def candidate(self, message: str) -> dict[str, Any] | None:
        with self.lock:
            rows = list(self.db["candidates"].rows_where("message = ?", [message]))
        if not rows:
            return None
        return {**rows[0], "branches": json.loads(rows[0]["branches"])}

    def dismiss(self, repo: str, key: str, by: str) -> None:
        with self.lock:
            self.db["dismissals"].insert({"repo": repo, "key": key, "by": by, "at": now()}, replace=True)

    def dismissed(self, repo: str) -> set[str]:
        with self.lock:
            return {r["key"] for r in self.db["dismissals"].rows_where("repo = ?", [repo])}

    # --- batches -----------------------------------------------------------------------------------

    def add_to_batch(self, repo: str, branch: str, key: str, by: str) -> bool:
        """False when the item is already pending there."""
        with self.lock:
            table = self.db["batch_items"]
            if table.count_where("repo = ? and branch = ? and key = ? and state = 'pending'", [repo, branch, key]):
                return False
            table.insert({"repo": repo, "branch": branch, "key": key, "state": "pending", "reason": None,
                          "added_by": by, "at": now()})
            return True

    def batch(self, repo: str, branch: str | None = None, state: str = "pending") -> list[dict[str, Any]]:
        where, params = "repo = ? and state = ?", [repo, state]
        if branch is not None:
            where += " and branch = ?"
            params.append(branch)
        with self.lock:
            return [dict(r) for r in self.db["batch_items"].rows_where(where, params, order_by="id")]

    def set_batch_item(self, item_id: int, state: str, reason: str | None = None) -> None:
        with self.lock:
            self.db["batch_items"].update(item_id, {"state": state, "reason": reason})

    def highest_message_number(self) -> int:
        """The largest numeric message id stored (the console numbers its messages; a restart
        continues after it so that `react 7` never reaches an older message 7)."""
        with self.lock:
            row = self.db.execute(
                "select max(n) from (select cast(message as integer) as n from attempts "
                "union all select cast(approval_message as integer) from attempts "
                "union all select cast(thread as integer) from requests "
                "union all select cast(message as integer) from candidates)").fetchone()
        return int(row[0] or 0)

    def orphaned(self) -> Iterator[Attempt]:
        """Attempts some process was working on and that process is gone (killed, crashed)."""
        placeholders = ",".join("?" for _ in WORKING)
        with self.lock:
            rows = list(self.db["attempts"].rows_where(f"state in ({placeholders})", [s.value for s in WORKING]))
        for row in rows:
            if not _owner_alive(row["owner"]):
                yield Attempt.from_row(row)
