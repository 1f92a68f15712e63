"""Every text the bot writes from the stored record: `why` an attempt ended as it did, `status`
of a fix across branches, progress lines and summaries, `stats`, the digest's header, the
command line's result lines and JSON, and the pull request a backport becomes. Plain text (and
GitHub markdown for pull requests), so every chat adapter can show it."""

from __future__ import annotations

import difflib
import re
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.ports import BatchItem, PullRequestDraft, Store
from bot.core.repos import Repo
from bot.core.workflow import SUCCEEDED, Attempt, Op, State
from bot.engine import policy
from bot.engine.git import Git
from bot.engine.source import Source

if TYPE_CHECKING:
    from bot.engine.candidates import Candidate


# What people read instead of the workflow's internal names.
STATE_WORDS = {State.REQUESTED: "requested", State.QUEUED: "queued", State.PICKING: "picking",
               State.CONFLICTED: "resolving conflicts", State.RESOLVING: "resolving conflicts",
               State.VERIFYING: "building and testing", State.READY: "ready",
               State.AWAITING_APPROVAL: "waiting for approval", State.OPENING_PR: "opening the pull request",
               State.PR_OPEN: "PR open", State.MERGED: "merged", State.CLOSED: "closed", State.FAILED: "failed",
               State.CANCELLED: "cancelled", State.INTERRUPTED: "interrupted",
               State.KEPT: "picked on the command line"}
STAGE_WORDS = {"resolve_source": "finding the fix", "policy": "checking the fix", "push": "pushing the branch",
               "ci": "CI", "internal": "an internal error"}

# Hunks whose note says what happened (where a placement landed, why it stayed unresolved); the
# model's note is its own explanation and is shown with its resolution instead.
EXPLAINED = frozenset({"unresolved", "placement", "relocated", "tests-left-out", "llm-repair"})
BY_MODEL = frozenset({"llm", "llm-repair"})  # rungs whose code a model wrote


def commit_title(p: dict[str, Any]) -> str:
    """A prerequisite as people read it: short SHA, subject, and its PR when the subject lacks it."""
    pr = f" (#{p['pr']})" if p.get("pr") and f"(#{p['pr']})" not in p["subject"] else ""
    return f"{p['commit'][:10]} {p['subject']}{pr}"


def state_words(state: State | str) -> str:
    try:
        return STATE_WORDS[State(state)]
    except ValueError:
        return str(state).replace("_", " ")


def stage_words(stage: str | None) -> str:
    """Where an attempt failed, in words."""
    if stage is None:
        return "an unknown step"
    return STAGE_WORDS.get(stage) or state_words(stage)


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in `text` (a model's answer cannot close it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


_CODE = re.compile(r"(```.*?```|`[^`\n]*`)", re.S)


def outside_code(text: str, escape: Callable[[str], str]) -> str:
    """`escape` applied to the text outside code spans and fences (the bot's own formatting, where a
    chat's markdown is not read anyway): how a chat adapter shows untrusted text literally."""
    return "".join(part if i % 2 else escape(part) for i, part in enumerate(_CODE.split(text)))


def kind_words(kind: str | None) -> str:
    return (kind or "unknown").replace("_", " ")


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
                + (f" ({h.detail['note']})" if h.detail.get("note") and h.resolved_by in EXPLAINED else "")
                for h in each)
            lines.append(f"  {path}: {count} hunk{'s' if count > 1 else ''}: {how}")
    if attempt.prerequisites:
        named = [p for p in attempt.prerequisites if p.get("named", True)]  # older rows name every one
        feature = next((p for p in named if p.get("feature")), None)  # older rows have none
        if named and all(p.get("picked") for p in named):  # asked for `with deps`: they are in the result
            lines.append("Picked first, with the fix (asked for with `with deps`):")
        elif feature is not None:
            pr = f", #{feature['pr']}" if feature.get("pr") and f"(#{feature['pr']})" not in feature["subject"] else ""
            lines.append(f"The fix probably does not apply to {attempt.branch}: the code it changes came with "
                         f"{feature['commit'][:10]} ({feature['subject']}{pr}), which is not a fix and is not on "
                         f"{attempt.branch}. Other commits that touched those lines:")
            named = [p for p in named if p is not feature]
        else:
            lines.append("Missing prerequisites (backport these first):")
        for p in named:
            lines.append(f"  {commit_title(p)} — touched {', '.join(p['paths'])}")
        if feature is not None and not named:
            lines[-1] = lines[-1].removesuffix(" Other commits that touched those lines:")
        more = len(attempt.prerequisites) - len(named) - (feature is not None)
        if more:
            lines.append(f"  and {more} more that explain less of the conflict")
    events = store.events(attempt.id)
    for e in events:
        if e.op == Op.FAIL and "command" in e.detail:
            cmd = e.detail["command"]
            lines.append(f"Verification log of `{cmd['name']}` (last lines; full log: {cmd['log']}):")
            lines.extend("  " + line for line in cmd["tail"].splitlines()[-15:])
        if "needs_approval" in e.detail:
            lines.append(f"Needs a maintainer's approval: {e.detail['needs_approval']}")
        if "verify_after_approval" in e.detail:
            lines.append(f"Build and tests not run yet: {e.detail['verify_after_approval']}")
    states = [e.state for e in events]
    timeline = " → ".join(state_words(s) for i, s in enumerate(states) if i == 0 or s != states[i - 1])
    lines.append(f"Timeline: {timeline} (started {_when(attempt.created_at)})")
    return "\n".join(lines)


def _headline(a: Attempt) -> str:
    what = f"Backport of {_name(a.source)} to {a.branch} (attempt {a.id})"
    if a.state in SUCCEEDED:
        return f"{what}: {state_words(a.state)}; the result is " \
               f"{a.result_commit[:10] if a.result_commit else '?'} on {a.result_branch}."
    if a.state == State.FAILED:
        return f"{what}: failed at {stage_words(a.stage)} ({kind_words(a.failure_kind)})."
    return f"{what}: {state_words(a.state)}" + (f" at {stage_words(a.stage)}" if a.stage else "") + "."


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
            state = f"failed at {stage_words(attempt.stage)}: {attempt.reason}"
        elif attempt.state == State.PR_OPEN:
            state = f"PR open: {attempt.pr_url}"
        elif attempt.state in SUCCEEDED:
            state = f"{state_words(attempt.state)}: {attempt.result_branch} at {(attempt.result_commit or '')[:10]}"
        else:
            state = state_words(attempt.state)
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
    state = a.state
    icon = ICONS.get(state, "🔄")
    if state == State.PR_OPEN and a.ci == "waiting":
        return f"🔄 {a.branch}: draft PR opened: {a.pr_url}{_conflicts(a)}; waiting for CI"
    if state == State.PR_OPEN and a.ci == "none":
        return f"⚠️ {a.branch}: draft PR opened: {a.pr_url}{_conflicts(a)}; CI: none reported in time"
    if state == State.PR_OPEN:
        ci = "; CI passed" if a.ci == "passed" else ""
        return f"{icon} {a.branch}: PR opened: {a.pr_url}{_conflicts(a)}{ci}"
    if state == State.FAILED:
        return (f"{icon} {a.branch}: failed at {stage_words(a.stage)} ({kind_words(a.failure_kind)}): "
                f"{a.reason}. "
                f"Details: `/backport why {_name(a.source)} {a.branch}`")
    if state == State.AWAITING_APPROVAL:
        return f"{icon} {a.branch}: ready on {a.result_branch}, waiting for a maintainer's ✅{_conflicts(a)}"
    if state == State.INTERRUPTED:
        return f"{icon} {a.branch}: interrupted ({a.reason}); react 🔁 to retry"
    if state == State.READY:
        return f"{icon} {a.branch}: picked onto {a.result_branch}{_conflicts(a)}; next: the pull request"
    doing = {State.REQUESTED: "queued", State.QUEUED: "queued", State.OPENING_PR: "opening the pull request"}
    return f"{icon} {a.branch}: {doing.get(state, state_words(state))}…{_conflicts(a)}"


def summary(attempts: list[Attempt]) -> str:
    counts = Counter(a.state for a in attempts)
    parts = [f"{counts[State.PR_OPEN]} PR{'s' if counts[State.PR_OPEN] != 1 else ''} opened"]
    for state, label in ((State.AWAITING_APPROVAL, "waiting for approval"), (State.FAILED, "failed"),
                         (State.CANCELLED, "cancelled"), (State.INTERRUPTED, "interrupted")):
        if counts[state]:
            parts.append(f"{counts[state]} {label}")
    return "Summary: " + ", ".join(parts) + "."


# Rough minutes a maintainer spends by hand, for the "time saved" estimate in stats.
MINUTES_PER_BACKPORT = 15
MINUTES_PER_RESOLVED_HUNK = 10


# Picked backports that may still be merged: not counted as time saved until they are.
NOT_MERGED_YET = frozenset({State.READY, State.AWAITING_APPROVAL, State.OPENING_PR, State.PR_OPEN, State.KEPT})


def _not_counted(unmerged: int, closed: int) -> str:
    parts = [f"{unmerged} not merged yet"] * bool(unmerged) + [f"{closed} closed unmerged"] * bool(closed)
    return f"; {' and '.join(parts)} are not counted" if parts else ""


def _saved_minutes(store: Store, merged: list[Attempt]) -> tuple[int, int]:
    """(minutes saved, hunks resolved) on merged backports: only a merged one saved anybody time."""
    hunks = sum(1 for a in merged for h in store.hunks(a.id) if h.resolved_by != "unresolved")
    return len(merged) * MINUTES_PER_BACKPORT + hunks * MINUTES_PER_RESOLVED_HUNK, hunks


def stats(store: Store) -> str:
    attempts = store.all_attempts()
    if not attempts:
        return "No backports yet."
    done = [a for a in attempts if a.state in SUCCEEDED]
    failed = Counter(a.failure_kind for a in attempts if a.state == State.FAILED)
    finished = len(done) + sum(failed.values())
    conflicted = sum(1 for a in attempts if a.conflicts)
    rungs = Counter(h.resolved_by for h in store.all_hunks())
    merged = [a for a in attempts if a.state == State.MERGED]
    unmerged = sum(1 for a in attempts if a.state in NOT_MERGED_YET)
    closed = sum(1 for a in attempts if a.state == State.CLOSED)
    saved, hunks = _saved_minutes(store, merged)
    usage = Counter[str]()
    for a in attempts:
        usage.update({k: v for k, v in a.llm_usage.items() if isinstance(v, int | float)})
    lines = [f"Backports: {len(attempts)} attempts, {len(done)} succeeded"
             + (f" ({len(done) / finished:.0%} of finished ones)" if finished else "")
             + (", failed: " + ", ".join(f"{kind_words(k)} {n}" for k, n in failed.most_common()) if failed else "")
             + ".",
             f"Conflicts: {conflicted} attempts had some; {sum(rungs.values())} hunks, "
             + (", ".join(f"{rung} {n}" for rung, n in rungs.most_common()) or "none") + ".",
             f"AI-resolved hunks: {rungs.get('llm', 0)}; LLM use: {usage['calls']:g} calls, "
             f"{usage['tokens']:g} tokens, {usage['seconds']:.1f} s",
             model_reviews(store, attempts, rungs.get("llm-repair", 0)),
             f"Time saved: about {saved / 60:.1f} hours on {len(merged)} merged backport"
             f"{'' if len(merged) == 1 else 's'} ({MINUTES_PER_BACKPORT} min each, {MINUTES_PER_RESOLVED_HUNK} min "
             f"per resolved hunk: {hunks})" + _not_counted(unmerged, closed) + "."]
    return "\n".join(lines)


def model_reviews(store: Store, attempts: list[Attempt], repaired: int) -> str:
    """What maintainers made of the results with model-written code: approved (✅, and not closed
    unmerged since), changed (the PR merged with commits people pushed on top of the bot's, or a
    later attempt of the same fix and branch took a resolution people recorded, rerere, where the
    model's was) or rejected (❌, cancelled, or the PR closed unmerged)."""
    by_model = [a for a in attempts if a.state in SUCCEEDED | {State.CANCELLED, State.CLOSED}
                and any(h.resolved_by in BY_MODEL for h in store.hunks(a.id))]
    changed = [a for a in by_model if _merged_changed(store, a) or any(
        later.id > a.id and later.source == a.source and later.branch == a.branch
        and any(h.resolved_by == "rerere" for h in store.hunks(later.id)) for later in attempts)]
    rejected = [a for a in by_model if a not in changed and a.state in (State.CANCELLED, State.CLOSED)]
    approved = [a for a in by_model if a not in changed and a not in rejected and a.approved_by]
    waiting = len(by_model) - len(changed) - len(rejected) - len(approved)
    return (f"Model resolutions reviewed: {len(approved)} approved, {len(changed)} changed, {len(rejected)} "
            f"rejected by maintainers, {waiting} not reviewed yet; {repaired} hunks repaired after a failed build "
            "(llm-repair).")


def _merged_changed(store: Store, a: Attempt) -> bool:
    """Merged, and what the forge merged is not the commit the bot pushed."""
    heads = [e.detail.get("head") for e in store.events(a.id) if e.op == Op.MERGED]
    return a.state == State.MERGED and bool(heads) and heads[-1] not in (None, a.result_commit)


def weekly(store: Store, weeks: int | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """One row per ISO week, oldest first, from the week of the first request (or the last `weeks`
    weeks) to the current one, empty weeks included: a dashboard's series has no holes. An attempt
    counts in the week it was requested: how many, how many succeeded (`success_rate` of the
    finished ones), the model's share of the resolved hunks, and the time saved on those merged
    (`backportbot stats --json`)."""
    by_week: dict[date, list[Attempt]] = {}
    for a in store.all_attempts():
        by_week.setdefault(_monday(a.created_at), []).append(a)
    last = _monday(time.time() if now is None else now)
    if weeks is not None:
        first = last - timedelta(weeks=weeks - 1)
    elif by_week:
        first = min(by_week)
    else:
        return []
    rows = []
    for i in range((last - first).days // 7 + 1):
        monday = first + timedelta(weeks=i)
        attempts = by_week.get(monday, [])
        done = sum(a.state in SUCCEEDED for a in attempts)
        failed = sum(a.state == State.FAILED for a in attempts)
        rungs = Counter(h.resolved_by for a in attempts for h in store.hunks(a.id))
        resolved = sum(n for rung, n in rungs.items() if rung != "unresolved")
        merged = [a for a in attempts if a.state == State.MERGED]
        saved, _ = _saved_minutes(store, merged)
        year, week, _ = monday.isocalendar()
        rows.append({"week": f"{year}-W{week:02d}", "attempts": len(attempts), "succeeded": done,
                     "success_rate": round(done / (done + failed), 3) if done + failed else None,
                     "hunks_resolved": resolved, "model_share": round(rungs.get("llm", 0) / resolved, 3) if resolved
                     else None, "merged": len(merged), "hours_saved": round(saved / 60, 2),
                     # and the week's first day, its failures, what its time saved leaves out
                     "start": monday.isoformat(), "failed": failed, "hunks_by_model": rungs.get("llm", 0),
                     "minutes_saved": saved, "not_merged_yet": sum(a.state in NOT_MERGED_YET for a in attempts),
                     "closed": sum(a.state == State.CLOSED for a in attempts)})
    return rows


def stats_json(store: Store, weeks: int | None = None, now: float | None = None) -> dict[str, Any]:
    """`backportbot stats --json`: the weekly rows and the basis of the time saved."""
    return {"weeks": weekly(store, weeks, now),
            "basis": {"minutes_per_merged_backport": MINUTES_PER_BACKPORT,
                      "minutes_per_resolved_hunk": MINUTES_PER_RESOLVED_HUNK,
                      "week_of": "request", "week_starts": "Monday, UTC"}}


def _monday(timestamp: float) -> date:
    day = datetime.fromtimestamp(timestamp, UTC).date()
    return day - timedelta(days=day.weekday())


# --- the command line --------------------------------------------------------------------------------


def as_json(a: Attempt) -> dict[str, Any]:
    """One branch's result, as `backportbot backport --json` prints it (a public interface)."""
    return {"branch": a.branch, "status": "succeeded" if a.state in SUCCEEDED else "failed",
            "stage": a.stage or a.state.value, "reason": a.reason, "kind": a.failure_kind,
            "conflicts": a.conflicts, "prerequisites": a.prerequisites, "warnings": a.warnings,
            "result_branch": a.result_branch, "result_commit": a.result_commit,
            "needs_approval": a.needs_approval, "attempt": a.id}


def result_line(a: Attempt) -> str:
    if a.state in SUCCEEDED:
        methods = [m for c in a.conflicts for m in c["resolved_by"]]
        note = f"; conflicts resolved: {', '.join(methods)}" if methods else ""
        note += "; needs a maintainer's approval" if a.needs_approval else ""
        note += "; its build and tests did not run (isolation is off)" if a.verify_after_approval else ""
        return f"{a.branch}: ok: {a.result_branch} at {(a.result_commit or '')[:10]}{note}"
    return f"{a.branch}: failed at {stage_words(a.stage)} ({kind_words(a.failure_kind)}): {a.reason}"


# --- the digest ------------------------------------------------------------------------------------


def digest_header(candidates: list[Candidate], repo: str, landed_missing: int | None = None,
                  window: str | None = None) -> str:
    """The digest's first message, with the window it looked at; one thread reply per candidate
    follows (most severe first, then the easiest)."""
    security = sum(c.security for c in candidates)
    head = f"Backport digest for {repo}: {len(candidates)} candidate{'s' if len(candidates) != 1 else ''}"
    if security:
        head += f" ({security} security)"
    if window:
        head += f", {window}"
    head += ". React on a candidate: ✅ backport it to its suggested branches, ❌ dismiss it, 🔁 check it again."
    if landed_missing:
        head += f"\nRequested or labelled but not landed yet: {landed_missing} (`/backport landed <branch>`)."
    return head


def split(text: str, limit: int) -> list[str]:
    """Cut a message into pieces under the chat's size limit, at line ends."""
    parts, current = [], ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                parts.append(current)
            current = ""
            parts.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            parts.append(current)
            current = ""
        current += line
    if current:
        parts.append(current)
    return parts


# --- pull requests -----------------------------------------------------------------------------------

AI_LABEL = "ai-resolved"
BODY_DIFF_LINES = 80


def _patch(git: Git, spec: list[str]) -> list[str]:
    """A diff without the parts that always differ (index lines, hunk line numbers)."""
    text = git.run("diff", "--no-color", *spec, check=False).stdout
    return [re.sub(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@", "@@", line) for line in text.splitlines()
            if not line.startswith("index ")]


def patch_difference(git: Git, source: Source, base: str, result: str) -> list[str]:
    """How the backport's patch differs from the original's (empty when identical)."""
    first, last = source.commits[0], source.commits[-1]
    parent = first.parents[(source.mainline or 1) - 1] if first.parents else None
    if parent is None:
        return []
    original = _patch(git, [parent, last.sha])
    backport = _patch(git, [base, result])
    if original == backport:
        return []
    return list(difflib.unified_diff(original, backport, "original patch", "backport", lineterm="", n=2))


def pull_request(git: Git, store: Store, attempt: Attempt, source: Source, base_branch: str,
                 requested_by: str | None) -> PullRequestDraft:
    """The pull request a successful backport becomes: title, body and labels."""
    hunks = store.hunks(attempt.id)
    ai = any(h.resolved_by in BY_MODEL for h in hunks)
    origin = f"#{source.pr_number}" if source.pr_number else source.key[:10]
    lines = [f"Backport of {origin} ({source.title}) to `{attempt.branch}`.", ""]
    if picked := [p for p in attempt.prerequisites if p.get("picked")]:
        lines += ["**Prerequisites picked first** (asked for with `with deps`; each is a fix the branch lacked):",
                  *(f"- {commit_title(p)}" for p in picked), ""]
    lines.append("**Commits picked** (with `git cherry-pick -x`):")
    lines += [f"- {c.sha[:10]} {c.subject}" for c in source.commits]
    lines.append("")
    if hunks:
        lines.append("**Conflicts and how they were resolved:**")
        for h in hunks:
            where = f"hunk at line {h.detail['line']}" if "line" in h.detail else h.detail.get("kind", "file")
            lines.append(f"- `{h.path}`, {where}: {h.resolved_by}"
                         + (f" ({h.detail['note']})" if h.detail.get("note") and h.resolved_by in EXPLAINED else ""))
            if h.resolved_by in BY_MODEL:
                resolution = h.detail.get("resolution", "")
                marks = fence(resolution)
                lines += [f"  {marks}", *("  " + x for x in resolution.splitlines()), f"  {marks}"]
        lines.append("")
    else:
        lines += ["No conflicts: the fix applied cleanly.", ""]
    verified = [e.detail["verified"] for e in store.events(attempt.id) if "verified" in e.detail]
    if verified:
        lines.append("**Verification:** " + ", ".join(f"`{r['name']}` passed ({r['seconds']:.1f}s)"
                                                      for r in verified[-1]))
        if not all(r.get("isolated", False) for r in verified[-1]):
            lines.append("⚠️ **Verified without isolation** (`[bot] isolation = \"none\"`): the commands ran as the "
                         "bot's children and could read its files and processes.")
    else:
        lines.append("**Verification:** no build or test commands are configured for this repository.")
    for warning in attempt.warnings:
        lines.append(f"**Check:** {warning}")
    lines.append("")
    base = attempt.base_commit or ""
    diff = patch_difference(git, source, base, attempt.result_commit or "") if base else []
    if diff:
        shown = diff[:BODY_DIFF_LINES]
        more = f"\n({len(diff) - len(shown)} more lines)" if len(diff) > len(shown) else ""
        marks = fence("\n".join(shown))
        lines += ["**Difference from the original patch:**", f"{marks}diff", *shown, marks + more]
    else:
        lines.append("The backport's patch is identical to the original.")
    if requested_by:
        lines += ["", f"Requested by {requested_by}; opened by backportbot."]
    labels = ("backport", AI_LABEL) if ai else ("backport",)
    return PullRequestDraft(
        title=f"[Backport {attempt.branch}] {source.title}", body="\n".join(lines), head=attempt.result_branch or "",
        base=base_branch, labels=labels, source=source.key,
        reviewers=(source.author,) if source.author else ())


def batch_body(applied: list[tuple[BatchItem, Attempt]], skipped: list[tuple[BatchItem, str]]) -> str:
    """The body of a batch PR: what applied cleanly, what needs a look, what was skipped and why."""
    clean = [(i, a) for i, a in applied if not a.warnings and not a.conflicts]
    attention = [(i, a) for i, a in applied if a.warnings or a.conflicts]
    lines = ["A batch of backports approved from the candidate digest.", "", "## Applied"]
    lines += [f"- {i.key} (approved by {i.added_by})" for i, _ in clean] or ["- (none)"]
    lines += ["", "## Needs attention"]
    lines += [f"- {i.key}: " + "; ".join(a.warnings + [f"{c['path']} resolved by {', '.join(c['resolved_by'])}"
                                                         for c in a.conflicts]) for i, a in attention] or ["- (none)"]
    lines += ["", "## Skipped"]
    lines += [f"- {i.key}: {why}" for i, why in skipped] or ["- (none)"]
    return "\n".join(lines)
