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
        elif attempt.state == State.PR_OPEN:
            state = f"PR open: {attempt.pr_url}"
        elif State(attempt.state) in SUCCEEDED:
            state = f"{attempt.state}: {attempt.result_branch} at {(attempt.result_commit or '')[:10]}"
        else:
            state = attempt.state
        lines.append(f"  {name}: {state}")
    return "\n".join(lines)


ICONS = {State.REQUESTED: "⏳", State.QUEUED: "⏳", State.READY: "🔄", State.AWAITING_APPROVAL: "✋",
         State.PR_OPEN: "✅", State.MERGED: "✅", State.CLOSED: "🚫", State.FAILED: "❌", State.CANCELLED: "🚫",
         State.INTERRUPTED: "⚠️"}


def _conflicts(a: Attempt) -> str:
    resolved = [f"{c['path']} ({', '.join(c['resolved_by'])})" for c in a.conflicts]
    return f"; conflicts: {'; '.join(resolved)}" if resolved else ""


def progress(a: Attempt) -> str:
    """The one progress line of a branch, rewritten as the attempt moves."""
    state = State(a.state)
    icon = ICONS.get(state, "🔄")
    if state == State.PR_OPEN and a.ci == "waiting":
        return f"🔄 {a.branch}: draft PR opened: {a.pr_url}{_conflicts(a)}; waiting for CI"
    if state == State.PR_OPEN:
        ci = "; CI passed" if a.ci == "passed" else ""
        return f"{icon} {a.branch}: PR opened: {a.pr_url}{_conflicts(a)}{ci}"
    if state == State.FAILED:
        return (f"{icon} {a.branch}: failed at {a.stage} ({a.failure_kind}): {a.reason}. "
                f"Details: `/backport why {_name(a.source)} {a.branch}`")
    if state == State.AWAITING_APPROVAL:
        return f"{icon} {a.branch}: ready on {a.result_branch}, waiting for a maintainer's ✅{_conflicts(a)}"
    if state == State.INTERRUPTED:
        return f"{icon} {a.branch}: interrupted ({a.reason}); react 🔁 to retry"
    if state == State.READY:
        return f"{icon} {a.branch}: picked onto {a.result_branch}{_conflicts(a)}; next: the pull request"
    doing = {State.REQUESTED: "queued", State.QUEUED: "queued", State.OPENING_PR: "opening the pull request"}
    return f"{icon} {a.branch}: {doing.get(state, state.value)}…{_conflicts(a)}"


def summary(attempts: list[Attempt]) -> str:
    counts = Counter(State(a.state) for a in attempts)
    parts = [f"{counts[State.PR_OPEN]} PR{'s' if counts[State.PR_OPEN] != 1 else ''} opened"]
    for state, label in ((State.AWAITING_APPROVAL, "waiting for approval"), (State.FAILED, "failed"),
                         (State.CANCELLED, "cancelled"), (State.INTERRUPTED, "interrupted")):
        if counts[state]:
            parts.append(f"{counts[state]} {label}")
    return "Summary: " + ", ".join(parts) + "."


# Rough minutes a maintainer spends by hand, for the "time saved" estimate in stats.
MINUTES_PER_BACKPORT = 15
MINUTES_PER_RESOLVED_HUNK = 10


def stats(store: Store) -> str:
    attempts = store.all_attempts()
    if not attempts:
        return "No backports yet."
    done = [a for a in attempts if State(a.state) in SUCCEEDED]
    failed = Counter(a.failure_kind for a in attempts if a.state == State.FAILED)
    finished = len(done) + sum(failed.values())
    conflicted = sum(1 for a in attempts if a.conflicts)
    rungs = Counter(h.resolved_by for h in store.all_hunks())
    resolved = sum(n for rung, n in rungs.items() if rung != "unresolved")
    saved = len(done) * MINUTES_PER_BACKPORT + resolved * MINUTES_PER_RESOLVED_HUNK
    usage = Counter[str]()
    for a in attempts:
        usage.update({k: v for k, v in a.llm_usage.items() if isinstance(v, int | float)})
    lines = [f"Backports: {len(attempts)} attempts, {len(done)} succeeded"
             + (f" ({len(done) / finished:.0%} of finished ones)" if finished else "")
             + (", failed: " + ", ".join(f"{k} {n}" for k, n in failed.most_common()) if failed else "") + ".",
             f"Conflicts: {conflicted} attempts had some; {sum(rungs.values())} hunks, "
             + (", ".join(f"{rung} {n}" for rung, n in rungs.most_common()) or "none") + ".",
             f"AI-resolved hunks: {rungs.get('llm', 0)}; LLM use: {usage['calls']:g} calls, "
             f"{usage['tokens']:g} tokens, {usage['seconds']:.1f} s",
             f"Time saved: about {saved / 60:.1f} hours ({MINUTES_PER_BACKPORT} min per backport, "
             f"{MINUTES_PER_RESOLVED_HUNK} min per resolved hunk)."]
    return "\n".join(lines)
