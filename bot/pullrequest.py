"""The pull request a successful backport becomes: title, body and labels (DESIGN §3 step 7)."""

from __future__ import annotations

import difflib
import re
from typing import Any

from bot.engine.git import Git
from bot.engine.source import Source
from bot.ports import PullRequestDraft
from bot.store import Attempt, Store

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


def draft(git: Git, store: Store, attempt: Attempt, source: Source, base_branch: str,
          requested_by: str | None) -> PullRequestDraft:
    hunks = store.hunks(attempt.id)
    ai = any(h.resolved_by == "llm" for h in hunks)
    origin = f"#{source.pr_number}" if source.pr_number else source.key[:10]
    lines = [f"Backport of {origin} ({source.title}) to `{attempt.branch}`.", ""]
    lines.append("**Commits picked** (with `git cherry-pick -x`):")
    lines += [f"- {c.sha[:10]} {c.subject}" for c in source.commits]
    lines.append("")
    if hunks:
        lines.append("**Conflicts and how they were resolved:**")
        for h in hunks:
            where = f"hunk at line {h.detail['line']}" if "line" in h.detail else h.detail.get("kind", "file")
            lines.append(f"- `{h.path}`, {where}: {h.resolved_by}")
            if h.resolved_by == "llm":
                lines += ["  ```", *("  " + x for x in h.detail.get("resolution", "").splitlines()), "  ```"]
        lines.append("")
    else:
        lines += ["No conflicts: the fix applied cleanly.", ""]
    verified = [e.detail["verified"] for e in store.events(attempt.id) if "verified" in e.detail]
    if verified:
        lines.append("**Verification:** " + ", ".join(f"`{r['name']}` passed ({r['seconds']:.1f}s)"
                                                      for r in verified[-1]))
    else:
        lines.append("**Verification:** no build or test commands are configured for this repository.")
    for warning in attempt.warnings:
        lines.append(f"**Check:** {warning}")
    lines.append("")
    bases = [e.detail["base_commit"] for e in store.events(attempt.id) if "base_commit" in e.detail]
    base = bases[-1] if bases else ""
    diff = patch_difference(git, source, base, attempt.result_commit or "") if base else []
    if diff:
        shown = diff[:BODY_DIFF_LINES]
        more = f"\n({len(diff) - len(shown)} more lines)" if len(diff) > len(shown) else ""
        lines += ["**Difference from the original patch:**", "```diff", *shown, "```" + more]
    else:
        lines.append("The backport's patch is identical to the original.")
    if requested_by:
        lines += ["", f"Requested by {requested_by}; opened by backportbot."]
    labels = ("backport", AI_LABEL) if ai else ("backport",)
    return PullRequestDraft(
        title=f"[Backport {attempt.branch}] {source.title}", body="\n".join(lines), head=attempt.result_branch or "",
        base=base_branch, labels=labels, source=source.key,
        reviewers=(source.author,) if source.author else ())


def batch_body(applied: list[tuple[dict[str, Any], Attempt]], skipped: list[tuple[dict[str, Any], str]]) -> str:
    """The body of a batch PR: what applied cleanly, what needs a look, what was skipped and why."""
    clean = [(i, a) for i, a in applied if not a.warnings and not a.conflicts]
    attention = [(i, a) for i, a in applied if a.warnings or a.conflicts]
    lines = ["A batch of backports approved from the candidate digest.", "", "## Applied"]
    lines += [f"- {i['key']} (approved by {i['added_by']})" for i, _ in clean] or ["- (none)"]
    lines += ["", "## Needs attention"]
    lines += [f"- {i['key']}: " + "; ".join(a.warnings + [f"{c['path']} resolved by {', '.join(c['resolved_by'])}"
                                                         for c in a.conflicts]) for i, a in attention] or ["- (none)"]
    lines += ["", "## Skipped"]
    lines += [f"- {i['key']}: {why}" for i, why in skipped] or ["- (none)"]
    return "\n".join(lines)
