"""Candidate discovery and ranking: fixes merged on the main branch that a release branch lacks,
each with how a backport would go there, decided in batches (one git pass per branch, one
in-memory merge batch for all pairs)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.engine import prereq
from bot.engine.errors import BackportFailure, BadInput
from bot.engine.git import Git
from bot.engine.policy import ORIGIN, find_present, patch_ids
from bot.engine.predict import Pick, Predictor
from bot.engine.source import PR_SUFFIX, changed_paths, log_commits, message_labels, read_commits, resolve

SECURITY = re.compile(r"\b(CVE-\d{4}-\d{4,}|security|vulnerab\w*|GHSA-[\w-]+)", re.I)
FIX_PREFIX = re.compile(r"^\s*(fix(es|ed)?|bug(fix)?|hotfix|BUG|security)\b(\([^)]*\))?!?:?", re.I)
FIX_WORDS = re.compile(r"\b(fix(es|ed)?|crash\w*|leak\w*|overflow\w*|underflow|use[- ]after[- ]free|deadlock\w*|"
                       r"race|regression|null pointer|segfault|corrupt\w*|assert\w*|panic\w*|hang\w*)\b", re.I)


@dataclass
class Candidate:
    commit: str
    key: str  # "#N" or the SHA
    title: str
    security: bool
    reasons: list[str]
    outlook: dict[str, str] = field(default_factory=dict)  # branch -> clean | conflicts ... | present

    @property
    def suggested(self) -> list[str]:
        """Branches a ✅ backports to: every one that does not have it yet."""
        return [b for b, o in self.outlook.items() if o != "present"]

    @property
    def risk(self) -> int:
        return sum(0 if o in ("clean", "present") else 1 for o in self.outlook.values())

    def line(self) -> str:
        tag = "🔒 security: " if self.security else ""
        where = "; ".join(f"{b}: {o}" for b, o in self.outlook.items())
        llm = next((r for r in self.reasons if r.startswith("LLM: ")), "")
        return f"{tag}{self.key if self.key.startswith('#') else self.key[:10]} {self.title} — {where}" + (
            f" ({llm})" if llm else "")

    def as_json(self) -> dict[str, object]:
        return {"commit": self.commit, "key": self.key, "title": self.title, "security": self.security,
                "reasons": self.reasons, "outlook": self.outlook, "suggested": self.suggested}


def classify(subject: str, body: str, fix_labels: Sequence[str]) -> tuple[bool, bool, list[str]]:
    """(is a fix candidate, is security, why) from labels, conventional prefixes and keywords."""
    labels = {x.lower() for x in message_labels(body)}
    reasons = []
    security = bool(SECURITY.search(subject)) or "security" in labels
    if security:
        reasons.append("security")
    if labels & {f.lower() for f in fix_labels}:
        reasons.append("labelled " + ", ".join(sorted(labels & {f.lower() for f in fix_labels})))
    if FIX_PREFIX.match(subject):
        reasons.append("fix prefix")
    elif m := FIX_WORDS.search(subject):
        reasons.append(f"mentions {m.group(0).lower()!r}")
    return bool(reasons), security, reasons


def _branch_index(git: Git, branch_ref: str, main_ref: str, since: str | None) -> tuple[set[str], set[str], str]:
    """What a branch already carries: origins named in its commits, `(#N)` subjects; and its
    merge base with main."""
    base = git.out("merge-base", branch_ref, main_ref)
    origins: set[str] = set()
    prs: set[str] = set()
    for c in log_commits(git, f"{base}..{branch_ref}", *([f"--since={since}"] if since else [])):
        origins.update(o.lower() for o in ORIGIN.findall(c.body))
        if m := PR_SUFFIX.search(c.subject):
            prs.add(m.group(1))
    return origins, prs, base


def find(git: Git, main_ref: str, branches: dict[str, str], fix_labels: Sequence[str], since: str | None = None,
         dismissed: set[str] | None = None, limit: int | None = None) -> list[Candidate]:
    """Fix candidates merged on main in the window (`since`: a date or a commit), with their outlook
    on every release branch (`branches`: the name people use -> its full ref, in the order to show
    them), security first then by risk."""
    window = [f"{since}..{main_ref}"] if since and git.rev(since) else (
        [f"--since={since}", main_ref] if since else [main_ref])
    # oldest first (-n counts from the newest, before --reverse)
    commits = log_commits(git, "--first-parent", "--reverse", *(["-n", "500"] if not since else []), *window)
    dismissed = dismissed or set()
    candidates: list[Candidate] = []
    for c in commits:
        is_fix, security, reasons = classify(c.subject, c.body, fix_labels)
        key = f"#{c.pr_number}" if c.pr_number else c.sha
        if is_fix and key not in dismissed and c.sha not in dismissed:
            candidates.append(Candidate(c.sha, key, PR_SUFFIX.sub("", c.subject).strip(), security, reasons))
        if limit and len(candidates) >= limit:
            break
    if not candidates:
        return []
    by_sha = {c.sha: c for c in commits}
    oldest = min((by_sha[x.commit] for x in candidates), key=lambda c: int(c.author_date.split()[0]))
    since_date = f"@{oldest.author_date.split()[0]}"
    # Cheap evidence first (ancestor, trailer, "(#N)"), one pass per branch.
    bases: dict[str, str] = {}
    unmatched: dict[str, list[Candidate]] = {}
    for branch, ref in branches.items():
        origins, prs, bases[branch] = _branch_index(git, ref, main_ref, since_date)
        missing = set(git.out("rev-list", f"{ref}..{main_ref}", f"--since={since_date}").split())
        unmatched[branch] = [c for c in candidates if c.commit in missing
                             and not any(c.commit.startswith(o) for o in origins)
                             and not (c.key.startswith("#") and c.key[1:] in prs)]
        for cand in candidates:
            if cand not in unmatched[branch]:
                cand.outlook[branch] = "present"

    def by_patch() -> dict[str, set[str]]:
        """branch -> candidates found there by equal patch-id (a backport under another name)."""
        waiting = {c.commit for cs in unmatched.values() for c in cs}
        if not waiting:
            return {}
        mine = patch_ids(git, ["--no-walk=unsorted", "--first-parent", "-m", *waiting])
        files = changed_paths(git, sorted(waiting))
        found: dict[str, set[str]] = {}
        for branch, cands in unmatched.items():
            paths = sorted({p for c in cands for p in files.get(c.commit, [])})
            if not paths:
                continue
            ref = branches[branch]
            theirs = set(patch_ids(git, ["--no-merges", f"--since={since_date}", f"{bases[branch]}..{ref}", "--",
                                         *paths]).values())
            found[branch] = {c.commit for c in cands if mine.get(c.commit) in theirs}
        return found

    picks, owners = [], []
    for branch, cands in unmatched.items():
        ref = branches[branch]
        for cand in cands:
            commit = by_sha[cand.commit]
            picks.append(Pick(cand.commit, commit.parents[0] if commit.parents else None, ref))
            owners.append((cand, branch))
    # The patch-id pass and the in-memory merges run side by side (two git processes).
    with ThreadPoolExecutor(max_workers=1) as pool, Predictor(git) as predictor:
        patched = pool.submit(by_patch)
        predictions = predictor.predict(picks)
        present = patched.result()
    keep = [i for i, (cand, branch) in enumerate(owners) if cand.commit not in present.get(branch, set())]
    for cand, branch in owners:
        if cand.commit in present.get(branch, set()):
            cand.outlook[branch] = "present"
    owners, predictions, picks = ([owners[i] for i in keep], [predictions[i] for i in keep],
                                  [picks[i] for i in keep])
    conflicted = []
    for (cand, branch), pred, pick in zip(owners, predictions, picks, strict=True):
        n = len(pred.conflicts)
        cand.outlook[branch] = "clean" if pred.clean else (
            f"conflicts in {n} file{'s' if n != 1 else ''} ({', '.join(pred.conflicts[:3])})")
        if not pred.clean and pick.parent:
            conflicted.append((cand, branch, pick, pred.conflicts[:3]))

    def needs(item: tuple[Candidate, str, Pick, tuple[str, ...]]) -> list[prereq.Prerequisite]:
        _, branch, pick, paths = item
        assert pick.parent is not None
        return prereq.find(git, pick.commit, pick.parent, pick.onto, main_ref, [(p, None) for p in paths],
                           predicted=True, base=bases[branch])

    with ThreadPoolExecutor(max_workers=2) as pool:  # blame is the slow part; git runs outside the GIL
        for (cand, branch, _, _), found in zip(conflicted, pool.map(needs, conflicted), strict=True):
            if found:
                cand.outlook[branch] += "; needs " + ", ".join(
                    f"#{p.pr}" if p.pr else p.commit[:10] for p in found[:3]) + " first"
    order = {b: i for i, b in enumerate(branches)}
    for cand in candidates:
        cand.outlook = dict(sorted(cand.outlook.items(), key=lambda kv: order[kv[0]]))
    live = [c for c in candidates if c.suggested]
    return sorted(live, key=lambda c: (not c.security, c.risk))


def not_landed(git: Git, main_ref: str, branch: str, ref: str, requested: dict[str, str]) -> list[tuple[str, str]]:
    """Fixes requested for `branch` (key -> what happened to the request) or labelled
    `backport/<branch>` on main (a `Labels:` line), that the branch does not carry yet."""
    labelled = git.out("rev-list", "--first-parent", "-E", "-i",
                       f"--grep=^Labels?:.*backport/{re.escape(branch)}\\b", main_ref).split()
    wanted = dict(requested)
    for c in read_commits(git, *labelled) if labelled else []:
        wanted.setdefault(f"#{c.pr_number}" if c.pr_number else c.sha, "labelled, never requested")
    missing = []
    for key, how in wanted.items():
        try:
            source = resolve(git, key, main_ref)
        except (BackportFailure, BadInput):  # a request for something that no longer resolves is still missing
            missing.append((key, how))
            continue
        if len(find_present(git, source, ref, main_ref)) < len(source.commits):
            missing.append((f"{key} {source.title}" if key.startswith("#") else f"{key[:10]} {source.title}", how))
    return missing
