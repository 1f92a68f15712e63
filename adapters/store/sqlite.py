"""The Store port on SQLite through sqlite-utils (WAL): requests, attempts, an append-only event
log per attempt, how each conflict hunk was resolved, digests, batches, the local forge's pull
requests and the ids of deliveries already received. Every table is created and migrated here
(`PRAGMA user_version`); every read returns a typed row."""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.db import Table

from bot.core.lease import Lease
from bot.core.ports import AlreadyOpen, BatchItem, CandidateRecord, DigestRecord, Request
from bot.core.workflow import FINISHED, Attempt, Event, IllegalMove, Move, Op, State
from bot.engine.ports import HunkRecord

SCHEMA_VERSION = 5


@dataclass(frozen=True)
class LocalPullRequest:
    """A pull request of the local forge."""

    number: int
    repo: str
    title: str
    body: str
    labels: list[str]
    head: str
    base: str
    state: str
    source: str
    reviewers: list[str]


def _local_pr(row: dict[str, Any]) -> LocalPullRequest:
    return LocalPullRequest(row["number"], row["repo"], row["title"], row["body"], json.loads(row["labels"]),
                            row["head"], row["base"], row["state"], row["source"], json.loads(row["reviewers"]))


def now() -> float:
    return time.time()


def _v1(db: sqlite_utils.Database) -> None:
    """The first version's tables (some were created by adapters then); a new database starts here."""
    t = _table
    t(db, "requests").create(
        {"id": int, "repo": str, "source": str, "branches": str, "requested_by": str,
         "origin": str, "channel": str, "thread": str, "summary": str, "created_at": float},
        pk="id", if_not_exists=True)
    t(db, "attempts").create(
        {"id": int, "request_id": int, "repo": str, "source": str, "branch": str, "state": str,
         "stage": str, "failure_kind": str, "reason": str, "source_commits": str,
         "pr_number": int, "result_branch": str, "result_commit": str, "worktree": str,
         "owner": str, "conflicts": str, "prerequisites": str, "warnings": str, "needs_approval": int,
         "message": str, "approval_message": str, "pr_url": str, "backport_pr": int, "ci": str, "llm": str,
         "created_at": float, "updated_at": float},
        pk="id", foreign_keys=[("request_id", "requests", "id")], if_not_exists=True)
    t(db, "events").create({"id": int, "attempt_id": int, "at": float, "state": str, "detail": str},
                           pk="id", foreign_keys=[("attempt_id", "attempts", "id")], if_not_exists=True)
    t(db, "hunks").create({"id": int, "attempt_id": int, "path": str, "hunk": int, "resolved_by": str,
                           "detail": str}, pk="id", foreign_keys=[("attempt_id", "attempts", "id")],
                          if_not_exists=True)
    t(db, "digests").create({"id": int, "repo": str, "at": float, "head": str, "channel": str, "message": str,
                             "candidates": int}, pk="id", if_not_exists=True)
    t(db, "candidates").create({"message": str, "repo": str, "key": str, "commit": str, "branches": str,
                                "security": int, "channel": str, "thread": str, "at": float}, pk="message",
                               if_not_exists=True)
    t(db, "dismissals").create({"repo": str, "key": str, "by": str, "at": float}, pk=("repo", "key"),
                               if_not_exists=True)
    t(db, "batch_items").create({"id": int, "repo": str, "branch": str, "key": str, "state": str, "reason": str,
                                 "added_by": str, "at": float}, pk="id", if_not_exists=True)
    t(db, "local_prs").create({"number": int, "repo": str, "title": str, "body": str, "labels": str, "head": str,
                               "base": str, "state": str, "source": str, "reviewers": str, "created_at": float},
                              pk="number", if_not_exists=True)
    t(db, "slack_events").create({"id": str, "at": float}, pk="id", if_not_exists=True)
    t(db, "deliveries").create({"id": str, "event": str, "at": float}, pk="id", if_not_exists=True)
    t(db, "attempts").create_index(["repo", "source", "branch"], if_not_exists=True)
    t(db, "events").create_index(["attempt_id"], if_not_exists=True)
    t(db, "hunks").create_index(["attempt_id"], if_not_exists=True)


def _v2(db: sqlite_utils.Database) -> None:
    """Approval, cancel requests, the base commit and retries become columns (they were found by
    scanning events, or lived in memory); events name their operation; one table of received
    deliveries for every source; `stage` only says where an attempt failed."""
    attempts = _table(db, "attempts")
    for column, kind in (("approved_by", str), ("cancel_requested_by", str), ("base_commit", str),
                         ("retry_of", int)):
        attempts.add_column(column, kind)
    _table(db, "events").add_column("op", str)
    db.execute("update attempts set approved_by = (select json_extract(e.detail, '$.approved_by') from events e "
               "where e.attempt_id = attempts.id and json_extract(e.detail, '$.approved_by') is not null "
               "order by e.id desc limit 1)")
    db.execute("update attempts set base_commit = (select json_extract(e.detail, '$.base_commit') from events e "
               "where e.attempt_id = attempts.id and json_extract(e.detail, '$.base_commit') is not null "
               "order by e.id desc limit 1)")
    db.execute("update attempts set retry_of = (select json_extract(e.detail, '$.retry_of') from events e "
               "where e.attempt_id = attempts.id and json_extract(e.detail, '$.retry_of') is not null "
               "order by e.id desc limit 1)")
    db.execute("update attempts set stage = null where state not in ('failed', 'interrupted', 'cancelled')")
    _table(db, "received").create({"source": str, "id": str, "at": float}, pk=("source", "id"))
    db.execute("insert into received select 'slack', id, at from slack_events")
    db.execute("insert into received select 'github', id, at from deliveries")
    db.execute("drop table slack_events")
    db.execute("drop table deliveries")


_FINISHED = ", ".join(f"'{s.value}'" for s in sorted(FINISHED))


def _v3(db: sqlite_utils.Database) -> None:
    """The inbox replaces the table of received ids; leases replace host:pid owners; the database
    holds at most one open attempt per (repository, fix, branch); the verify process group of an
    attempt is recorded; requests remember the inbox entry that made them; chat adapters may
    remember where a thread is."""
    _table(db, "inbox").create(
        {"id": int, "source": str, "key": str, "kind": str, "payload": str, "reply": str, "state": str,
         "received_at": float, "handled_at": float}, pk="id")
    db.execute("create unique index inbox_key on inbox (source, key)")
    db.execute("create index inbox_pending on inbox (state)")
    db.execute("insert into inbox (source, key, kind, payload, state, received_at, handled_at) "
               "select source, id, 'unknown', '{}', 'handled', at, at from received")
    db.execute("drop table received")
    _table(db, "leases").create({"id": str, "host": str, "pid": int, "started": str, "heartbeat_at": float,
                                 "ended_at": float}, pk="id")
    _table(db, "attempts").add_column("process", str)
    _table(db, "requests").add_column("inbox", int)
    _table(db, "chat_threads").create({"chat": str, "root": str, "thread": str}, pk=("chat", "root"))
    # Before the index: of two open attempts for one fix and branch, the older one is given up.
    db.execute(f"update attempts set state = 'interrupted', reason = 'a newer attempt for the same fix and branch' "
               f"where state not in ({_FINISHED}) and exists (select 1 from attempts b where b.repo = attempts.repo "
               f"and b.source = attempts.source and b.branch = attempts.branch and b.id > attempts.id "
               f"and b.state not in ({_FINISHED}))")
    db.execute(f"create unique index attempts_open on attempts (repo, source, branch) "
               f"where state not in ({_FINISHED})")


def _v4(db: sqlite_utils.Database) -> None:
    """An attempt whose build and tests wait for a maintainer's ✅ (they would run unisolated)."""
    _table(db, "attempts").add_column("verify_after_approval", int, not_null_default=0)


def _v5(db: sqlite_utils.Database) -> None:
    """A request may ask for the fix's missing prerequisites to be picked with it (`with deps`)."""
    _table(db, "requests").add_column("with_deps", int, not_null_default=0)


# MIGRATIONS[n] makes version n + 1
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2, _v3, _v4, _v5]


def _table(db: sqlite_utils.Database, name: str) -> Table:
    return Table(db, name)


def _json(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _attempt(row: dict[str, Any]) -> Attempt:
    return Attempt(
        id=row["id"], request_id=row["request_id"], repo=row["repo"], source=row["source"],
        branch=row["branch"], state=State(row["state"]), stage=row["stage"],
        failure_kind=row["failure_kind"], reason=row["reason"],
        source_commits=json.loads(row["source_commits"] or "[]"), pr_number=row["pr_number"],
        result_branch=row["result_branch"], result_commit=row["result_commit"], base_commit=row["base_commit"],
        worktree=row["worktree"], owner=row["owner"], conflicts=json.loads(row["conflicts"] or "[]"),
        prerequisites=json.loads(row["prerequisites"] or "[]"), warnings=json.loads(row["warnings"] or "[]"),
        needs_approval=bool(row["needs_approval"]), approved_by=row["approved_by"],
        cancel_requested_by=row["cancel_requested_by"], message=row["message"],
        approval_message=row["approval_message"], pr_url=row["pr_url"], backport_pr=row["backport_pr"],
        ci=row["ci"], llm_usage=json.loads(row["llm"] or "{}"), retry_of=row["retry_of"], process=row["process"],
        verify_after_approval=bool(row["verify_after_approval"]), created_at=row["created_at"],
        updated_at=row["updated_at"])


def _request(row: dict[str, Any]) -> Request:
    return Request(row["id"], row["repo"], row["source"], json.loads(row["branches"] or "[]"), row["requested_by"],
                   row["origin"], row["channel"], row["thread"], row["summary"], row["created_at"], row["inbox"],
                   bool(row["with_deps"]))


def _hunk(row: dict[str, Any]) -> HunkRecord:
    return HunkRecord(row["path"], row["hunk"], row["resolved_by"], json.loads(row["detail"]))


# Attempt columns a Move or a note may write (the state only through a Move).
_COLUMNS = {"stage", "failure_kind", "reason", "source_commits", "pr_number", "result_branch", "result_commit",
            "base_commit", "worktree", "owner", "conflicts", "prerequisites", "warnings", "needs_approval",
            "approved_by", "cancel_requested_by", "message", "approval_message", "pr_url", "backport_pr", "ci",
            "llm", "retry_of", "process", "verify_after_approval"}


class SQLiteStore:
    """Thread-safe: one connection guarded by a lock; other processes share the file via WAL."""

    def __init__(self, path: Path, redact: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.redact = redact or (lambda text: text)  # known secret values never reach the file
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.db = sqlite_utils.Database(conn)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.lock = threading.RLock()
        # One process at a time: several starting on a new database must not all set it up.
        with open(path.with_name(path.name + ".opening"), "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            self.db.enable_wal()
            self._migrate()

    def _migrate(self) -> None:
        with self.lock, self.db.conn:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer backportbot (schema {version}; "
                                   f"this one knows {SCHEMA_VERSION})")
            for migrate in MIGRATIONS[version:]:
                migrate(self.db)
            if version != SCHEMA_VERSION:
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _t(self, name: str) -> Table:
        return _table(self.db, name)

    # --- requests and attempts -----------------------------------------------------------------------

    def add_request(self, repo: str, source: str, branches: list[str], requested_by: str, origin: str,
                    channel: str | None = None, thread: str | None = None, inbox: int | None = None,
                    with_deps: bool = False) -> int:
        with self.lock:
            table = self._t("requests").insert(
                {"repo": repo, "source": source, "branches": json.dumps(branches), "requested_by": requested_by,
                 "origin": origin, "channel": channel, "thread": thread, "inbox": inbox,
                 "with_deps": int(with_deps), "created_at": now()})
            return int(table.last_pk or 0)

    def request_of(self, inbox: int) -> Request | None:
        with self.lock:
            rows = list(self._t("requests").rows_where("inbox = ?", [inbox], limit=1))
        return _request(rows[0]) if rows else None

    def set_thread(self, request_id: int, thread: str) -> None:
        with self.lock:
            self._t("requests").update(request_id, {"thread": thread})

    def forget(self, request_id: int, attempts: list[int] | None = None) -> None:
        with self.lock, self.db.conn:
            ids = attempts if attempts is not None else [r[0] for r in self.db.execute(
                "select id from attempts where request_id = ?", [request_id]).fetchall()]
            marks = ",".join("?" for _ in ids)
            started = self.db.execute(f"select count(*) from attempts where id in ({marks}) and state != ?",
                                      [*ids, State.REQUESTED.value]).fetchone()[0]
            if started:
                raise IllegalMove(f"request {request_id} has attempts that started; they stay on record")
            self.db.execute(f"delete from events where attempt_id in ({marks})", ids)
            self.db.execute(f"delete from attempts where id in ({marks})", ids)
            if not self.db.execute("select count(*) from attempts where request_id = ?", [request_id]).fetchone()[0]:
                self.db.execute("delete from requests where id = ?", [request_id])

    def rekey(self, attempt_id: int, source: str) -> None:
        with self.lock, self.db.conn:
            try:
                self.db.execute("update attempts set source = ? where id = ?", [source, attempt_id])
            except sqlite3.IntegrityError:
                row = self.db.execute("select repo, branch from attempts where id = ?", [attempt_id]).fetchone()
                raise AlreadyOpen(self._open(row[0], source, row[1])) from None

    def request(self, request_id: int) -> Request:
        with self.lock:
            return _request(self._t("requests").get(request_id))

    def set_summary(self, request_id: int, summary: str) -> None:
        with self.lock:
            self._t("requests").update(request_id, {"summary": summary})

    def add_attempt(self, request_id: int, repo: str, source: str, branch: str) -> int:
        t = now()
        with self.lock, self.db.conn:
            try:
                table = self._t("attempts").insert(
                    {"request_id": request_id, "repo": repo, "source": source, "branch": branch,
                     "state": State.REQUESTED.value, "needs_approval": 0, "created_at": t, "updated_at": t})
            except sqlite3.IntegrityError:  # the unique index of open attempts: another one is open
                raise AlreadyOpen(self._open(repo, source, branch)) from None
            attempt_id = int(table.last_pk or 0)
            self._event(attempt_id, Op.REQUEST, State.REQUESTED, {})
            return attempt_id

    def _open(self, repo: str, source: str, branch: str) -> Attempt:
        rows = list(self._t("attempts").rows_where(
            f"repo = ? and source = ? and branch = ? and state not in ({_FINISHED})", [repo, source, branch]))
        return _attempt(rows[0])

    def _event(self, attempt_id: int, op: Op, state: State | str, detail: dict[str, Any]) -> None:
        self._t("events").insert({"attempt_id": attempt_id, "at": now(), "op": op.value, "state": str(state),
                                  "detail": self.redact(json.dumps(detail))})

    def _columns(self, columns: dict[str, Any]) -> dict[str, Any]:
        unknown = set(columns) - _COLUMNS
        if unknown:
            raise ValueError(f"not an attempt column a move may write: {', '.join(sorted(unknown))}")
        return {k: self.redact(v) if isinstance(v := _json(value), str) else v for k, value in columns.items()}

    def move(self, attempt_id: int, move: Move) -> Attempt:
        updates = {**self._columns(move.columns), "state": move.target.value, "updated_at": now()}
        sets = ", ".join(f"[{k}] = ?" for k in updates)
        allowed = sorted(s.value for s in move.sources)
        with self.lock, self.db.conn:
            cursor = self.db.execute(
                f"update attempts set {sets} where id = ? and state in ({','.join('?' for _ in allowed)})",
                [*updates.values(), attempt_id, *allowed])
            if cursor.rowcount != 1:
                row = self.db.execute("select state from attempts where id = ?", [attempt_id]).fetchone()
                current = row[0] if row else "missing"
                raise IllegalMove(f"attempt {attempt_id}: cannot {move.op.value.replace('_', ' ')} "
                                  f"from {current.replace('_', ' ')}")
            self._event(attempt_id, move.op, move.target, move.detail)
        return self.attempt(attempt_id)

    def note(self, attempt_id: int, op: Op, detail: dict[str, Any], **columns: Any) -> None:
        updates = self._columns(columns)
        with self.lock, self.db.conn:
            state = self._t("attempts").get(attempt_id)["state"]
            if updates:
                self._t("attempts").update(attempt_id, {**updates, "updated_at": now()})
            self._event(attempt_id, op, state, detail)

    def set_message(self, attempt_id: int, *, message: str | None = None, approval_message: str | None = None) -> None:
        """Where the attempt's progress (or approval) message is, in the request's thread."""
        updates = {k: v for k, v in (("message", message), ("approval_message", approval_message)) if v}
        with self.lock:
            self._t("attempts").update(attempt_id, updates)

    def attempt(self, attempt_id: int) -> Attempt:
        with self.lock:
            return _attempt(self._t("attempts").get(attempt_id))

    def attempts(self, repo: str, source: str | None = None, branch: str | None = None) -> list[Attempt]:
        where, params = ["repo = ?"], [repo]
        if source is not None:
            where.append("source = ?")
            params.append(source)
        if branch is not None:
            where.append("branch = ?")
            params.append(branch)
        with self.lock:
            return [_attempt(r) for r in self._t("attempts").rows_where(" and ".join(where), params, order_by="id")]

    def llm_tokens_since(self, repo: str, since: float) -> int:
        with self.lock:
            row = self.db.execute("select sum(coalesce(json_extract(llm, '$.tokens'), 0)) from attempts "
                                  "where repo = ? and created_at >= ?", [repo, since]).fetchone()
            return int(row[0] or 0)

    def latest(self, repo: str, source: str, branch: str) -> Attempt | None:
        with self.lock:
            rows = list(self._t("attempts").rows_where(
                "repo = ? and branch = ? and (source = ? or exists (select 1 from json_each(attempts.source_commits) "
                "where value = ?))", [repo, branch, source, source], order_by="id desc", limit=1))
        return _attempt(rows[0]) if rows else None

    def on_branch(self, repo: str, result_branch: str) -> list[Attempt]:
        with self.lock:
            return [_attempt(r) for r in self._t("attempts").rows_where(
                "repo = ? and result_branch = ?", [repo, result_branch], order_by="id")]

    def in_state(self, *states: State) -> list[Attempt]:
        placeholders = ",".join("?" for _ in states)
        with self.lock:
            rows = self._t("attempts").rows_where(f"state in ({placeholders})", [s.value for s in states],
                                                  order_by="id")
            return [_attempt(r) for r in rows]

    def by_message(self, message_id: str) -> Attempt | None:
        """The attempt whose progress or approval message this is."""
        with self.lock:
            rows = list(self._t("attempts").rows_where("message = ? or approval_message = ?",
                                                       [message_id, message_id], order_by="id desc", limit=1))
        return _attempt(rows[0]) if rows else None

    def all_attempts(self) -> list[Attempt]:
        with self.lock:
            return [_attempt(r) for r in self._t("attempts").rows_where(order_by="id")]

    def events(self, attempt_id: int) -> list[Event]:
        with self.lock:
            rows = self._t("events").rows_where("attempt_id = ?", [attempt_id], order_by="id")
            return [Event(r["attempt_id"], r["at"], Op(r["op"]) if r["op"] else Op.NOTE, State(r["state"]),
                          json.loads(r["detail"])) for r in rows]

    def record_hunks(self, attempt_id: int, hunks: list[HunkRecord]) -> None:
        with self.lock, self.db.conn:
            self._t("hunks").delete_where("attempt_id = ?", [attempt_id])
            self._t("hunks").insert_all(
                {"attempt_id": attempt_id, "path": h.path, "hunk": h.index, "resolved_by": h.resolved_by,
                 "detail": json.dumps(h.detail)} for h in hunks)

    def hunks(self, attempt_id: int) -> list[HunkRecord]:
        with self.lock:
            return [_hunk(r) for r in self._t("hunks").rows_where("attempt_id = ?", [attempt_id], order_by="id")]

    def all_hunks(self) -> list[HunkRecord]:
        with self.lock:
            return [_hunk(r) for r in self._t("hunks").rows_where()]

    # --- leases -------------------------------------------------------------------------------------

    def take_lease(self, lease: Lease) -> None:
        with self.lock:
            self._t("leases").insert({"id": lease.id, "host": lease.host, "pid": lease.pid, "started": lease.started,
                                      "heartbeat_at": lease.heartbeat_at, "ended_at": lease.ended_at}, replace=True)

    def renew_lease(self, lease_id: str, at: float) -> None:
        with self.lock:
            self._t("leases").update(lease_id, {"heartbeat_at": at})

    def end_lease(self, lease_id: str, at: float) -> None:
        with self.lock:
            self._t("leases").update(lease_id, {"ended_at": at})

    def lease(self, lease_id: str) -> Lease | None:
        with self.lock:
            rows = list(self._t("leases").rows_where("id = ?", [lease_id]))
        return Lease(**rows[0]) if rows else None

    def leases_on(self, host: str) -> list[Lease]:
        """The leases taken on `host` that have not ended, the newest heartbeat first."""
        with self.lock:
            rows = list(self._t("leases").rows_where("host = ? and ended_at is null", [host],
                                                     order_by="heartbeat_at desc"))
        return [Lease(**row) for row in rows]

    # --- the inbox ---------------------------------------------------------------------------------------

    def accept(self, source: str, key: str | None, kind: str, payload: dict[str, Any],
               reply: str | None) -> int | None:
        with self.lock, self.db.conn:
            cursor = self.db.execute(
                "insert or ignore into inbox (source, key, kind, payload, reply, state, received_at) "
                "values (?, ?, ?, ?, ?, 'pending', ?)",
                [source, key, kind, self.redact(json.dumps(payload)), reply, now()])
            return cursor.lastrowid if cursor.rowcount == 1 else None

    def pending(self) -> list[tuple[int, str, str, dict[str, Any], str | None]]:
        with self.lock:
            rows = self.db.execute("select id, source, kind, payload, reply from inbox where state = 'pending' "
                                   "order by id").fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def handled(self, entry_id: int) -> None:
        with self.lock, self.db.conn:
            self.db.execute("update inbox set state = 'handled', reply = null, handled_at = ? where id = ?",
                            [now(), entry_id])

    # --- digests ---------------------------------------------------------------------------------------

    def last_digest(self, repo: str) -> DigestRecord | None:
        with self.lock:
            rows = list(self._t("digests").rows_where("repo = ?", [repo], order_by="id desc", limit=1))
        return DigestRecord(**rows[0]) if rows else None

    def add_digest(self, repo: str, head: str, channel: str, message: str, candidates: int) -> None:
        with self.lock:
            self._t("digests").insert({"repo": repo, "at": now(), "head": head, "channel": channel,
                                       "message": message, "candidates": candidates})

    def add_candidate(self, c: CandidateRecord) -> None:
        with self.lock:
            self._t("candidates").insert({"message": c.message, "repo": c.repo, "key": c.key, "commit": c.commit,
                                          "branches": json.dumps(c.branches), "security": int(c.security),
                                          "channel": c.channel, "thread": c.thread, "at": now()}, replace=True)

    def candidate(self, message: str) -> CandidateRecord | None:
        with self.lock:
            rows = list(self._t("candidates").rows_where("message = ?", [message]))
        if not rows:
            return None
        r = rows[0]
        return CandidateRecord(r["message"], r["repo"], r["key"], r["commit"], json.loads(r["branches"]),
                               bool(r["security"]), r["channel"], r["thread"])

    def dismiss(self, repo: str, key: str, by: str) -> None:
        with self.lock:
            self._t("dismissals").insert({"repo": repo, "key": key, "by": by, "at": now()}, replace=True)

    def dismissed(self, repo: str) -> set[str]:
        with self.lock:
            return {r["key"] for r in self._t("dismissals").rows_where("repo = ?", [repo])}

    # --- batches ---------------------------------------------------------------------------------------

    def add_to_batch(self, repo: str, branch: str, key: str, by: str) -> bool:
        """False when the item is already pending there."""
        with self.lock:
            table = self._t("batch_items")
            if table.count_where("repo = ? and branch = ? and key = ? and state = 'pending'", [repo, branch, key]):
                return False
            table.insert({"repo": repo, "branch": branch, "key": key, "state": "pending", "reason": None,
                          "added_by": by, "at": now()})
            return True

    def batch(self, repo: str, branch: str | None = None, state: str = "pending") -> list[BatchItem]:
        where, params = "repo = ? and state = ?", [repo, state]
        if branch is not None:
            where += " and branch = ?"
            params.append(branch)
        with self.lock:
            return [BatchItem(r["id"], r["repo"], r["branch"], r["key"], r["state"], r["reason"], r["added_by"])
                    for r in self._t("batch_items").rows_where(where, params, order_by="id")]

    def set_batch_item(self, item_id: int, state: str, reason: str | None = None) -> None:
        with self.lock:
            self._t("batch_items").update(item_id, {"state": state, "reason": reason})

    # --- for adapters: received deliveries, the local forge, the console ---------------------------

    def thread_of(self, chat: str, root: str) -> str | None:
        """Where a chat adapter put the thread that starts at message `root` (see remember_thread)."""
        with self.lock:
            row = self.db.execute("select thread from chat_threads where chat = ? and root = ?",
                                  [chat, root]).fetchone()
        return row[0] if row else None

    def remember_thread(self, chat: str, root: str, thread: str) -> None:
        with self.lock:
            self._t("chat_threads").insert({"chat": chat, "root": root, "thread": thread}, replace=True)

    def add_local_pr(self, repo: str, title: str, body: str, labels: list[str], head: str, base: str, source: str,
                     reviewers: list[str]) -> LocalPullRequest:
        """A new pull request; the open one for `head` when there is one (as GitHub answers)."""
        with self.lock:
            existing = self.local_prs(repo, head)
            if existing:
                return existing[0]
            table = self._t("local_prs").insert(
                {"repo": repo, "title": title, "body": self.redact(body), "labels": json.dumps(labels), "head": head,
                 "base": base, "state": "open", "source": source, "reviewers": json.dumps(reviewers),
                 "created_at": now()})
            return _local_pr(self._t("local_prs").get(int(table.last_pk or 0)))

    def local_prs(self, repo: str, head: str | None = None, state: str = "open") -> list[LocalPullRequest]:
        where, params = "repo = ? and state = ?", [repo, state]
        if head is not None:
            where += " and head = ?"
            params.append(head)
        with self.lock:
            return [_local_pr(r) for r in self._t("local_prs").rows_where(where, params, order_by="number")]

    def local_pr(self, number: int) -> LocalPullRequest:
        with self.lock:
            return _local_pr(self._t("local_prs").get(number))

    def highest_message_number(self) -> int:
        """The largest numeric message id stored (the console numbers its messages; a restart
        continues after it so that `react 7` never reaches an older message 7)."""
        with self.lock:
            row = self.db.execute(
                "select max(n) from (select cast(message as integer) as n from attempts "
                "union all select cast(approval_message as integer) from attempts "
                "union all select cast(thread as integer) from requests "
                "union all select cast(message as integer) from candidates "
                "union all select cast(message as integer) from digests)").fetchone()
        return int(row[0] or 0)
