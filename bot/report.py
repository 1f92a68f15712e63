"""Answers built from the stored record: `why` an attempt ended as it did, and `status` of a fix
across branches. Plain text, so every chat adapter can show it."""

from __future__ import annotations

import time
from collections import Counter

from bot.engine import policy
from bot.engine.source import Source
from bot.repos import Repo
from bot.states import SUCCEEDED, State
from bot.store import Attempt, Store


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _name(source: str) -> str:
    return source if source.startswith("#") else source[:10]


def why(store: Store, repo: str, source: str, branch: str) -> str:
    attempt = store.latest(repo, source, branch)
    if attempt is None:
        return f"No backport of {_name(source)} to {branch} has been attempted."
    lines = [_headline(attempt)]
    if attempt.reason:
        lines.append(f"Reason: {attempt.reason}")
    hunks = store.hunks(attempt.id)
    if hunks:
        lines.append("Conflicts:")
        for path, count in Counter(h.path for h in hunks).items():
            each = [h for h in hunks if h.path == path]
            how = "; ".join(
                (f"line {h.detail['line']}: " if "line" in h.detail else "") + h.resolved_by
                + (f" ({h.detail['note']})" if h.detail.get("note") and h.resolved_by == "unresolved" else "")
                for h in each)
            lines.append(f"  {path}: {count} hunk{'s' if count > 1 else ''}: {how}")
    if attempt.prerequisites:
        lines.append("Missing prerequisites (backport these first):")
        for p in attempt.prerequisites:
            pr = f" (#{p['pr']})" if p.get("pr") and f"(#{p['pr']})" not in p["subject"] else ""
            lines.append(f"  {p['commit'][:10]} {p['subject']}{pr} — touched {', '.join(p['paths'])}")
    events = store.events(attempt.id)
    for e in events:
        if e.state == State.FAILED and "command" in e.detail:
            cmd = e.detail["command"]
            lines.append(f"Verification log of `{cmd['name']}` (last lines; full log: {cmd['log']}):")
            lines.extend("  " + line for line in cmd["tail"].splitlines()[-15:])
        if "needs_approval" in e.detail:
            lines.append(f"Needs a maintainer's approval: {e.detail['needs_approval']}")
    states = [e.state for e in events]
    timeline = " → ".join(s for i, s in enumerate(states) if i == 0 or s != states[i - 1])
    lines.append(f"Timeline: {timeline} (started {_when(attempt.created_at)})")
    return "\n".join(lines)


def _headline(a: Attempt) -> str:
    what = f"Backport of {_name(a.source)} to {a.branch} (attempt {a.id})"
    if State(a.state) in SUCCEEDED:
        return f"{what}: {a.state}; the result is {a.result_commit[:10] if a.result_commit else '?'} " \
               f"on {a.result_branch}."
    if a.state == State.FAILED:
        return f"{what}: failed at {a.stage} ({a.failure_kind})."
    return f"{what}: {a.state}" + (f" at {a.stage}" if a.stage else "") + "."


def status(store: Store, repo: Repo, source: Source) -> str:
    """One line per release branch: present, in progress, ready, failed or missing."""
    lines = [f"{_name(source.key)} {source.title}"]
    for name in repo.release_branches():
        _, ref = repo.branch(name)
        present = policy.find_present(repo.workspace.git, source, ref, repo.main_ref)
        attempt = store.latest(repo.key, source.key, name)
        if present and len(present) == len(source.commits):
            p = present[0]
            state = "merged" if p.how == "ancestor" else f"merged as {p.on_branch[:10]} ({p.how})"
        elif attempt is None:
            state = "missing"
        elif attempt.state == State.FAILED:
            state = f"failed at {attempt.stage}: {attempt.reason}"
        elif State(attempt.state) in SUCCEEDED:
            state = f"{attempt.state}: {attempt.result_branch} at {(attempt.result_commit or '')[:10]}"
        else:
            state = attempt.state
        lines.append(f"  {name}: {state}")
    return "\n".join(lines)
