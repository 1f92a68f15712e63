"""`backportbot eval`: replay a project's own backport history through the engine.

Every human backport is an answer key: the original commit on the main branch, and the tree a
human committed on the release branch. Mining finds the pairs; replay picks the original onto
the human backport's first parent; classification compares the engine's tree with the human's.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.engine import testfiles
from bot.engine.backport import Engine, Outcome, Plan, check_names
from bot.engine.errors import BackportFailure
from bot.engine.git import Git
from bot.engine.policy import branch_index, patch_ids
from bot.engine.ports import Command, HunkResolver, Sandbox, Silent
from bot.engine.predict import Pick, Predictor
from bot.engine.source import PR_SUFFIX, Source, log_commits, read_commits, resolve
from bot.engine.workspace import Workspace

TRAILER = re.compile(r"\(cherry picked from commit ([0-9a-f]{7,40})\)")
BACKPORT_OF = re.compile(r"Backport of ([0-9a-f]{7,40})\b")
# A release prefix on a backport's subject: [release-1.2], [1.2], [v255-stable], [backport 1.2],
# [Backport x], Backport:, (backport); and a trailing (#N), the backport's own PR or the original's.
RELEASE_PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]|\((?:backport|cherry[- ]pick)[^)]*\)|backport:)\s*", re.I)
TRAILING_PR = re.compile(r"\s*\(#\d+\)\s*$")

CLASSES = ("reproduced", "clean-different", "resolved-equal", "resolved-different",
           "unresolved-prereq-confirmed", "unresolved-prereq-named", "unresolved", "other")


@dataclass(frozen=True)
class Pair:
    original: str  # on the main branch
    human: str  # the human backport on the release branch
    target: str  # the human backport's first parent: where the replay starts
    branch: str
    method: str  # trailer | backport-of | subject | patch-id | subject-prefix


@dataclass
class Result:
    pair: Pair
    cls: str
    rungs: list[str] = field(default_factory=list)  # how conflict hunks were resolved
    prerequisites: list[str] = field(default_factory=list)
    reason: str | None = None
    flagged: bool = False  # the names check asked for approval
    llm_rejected: int = 0  # hunks where the LLM's answer failed a check (or it declined)
    warnings: list[str] = field(default_factory=list)  # why the engine would ask for approval
    kept: bool | None = None  # conflicting pairs: the human kept the fix's +/- lines (only context drifted)
    prereqs_present: list[str] = field(default_factory=list)  # named prerequisites the target already carries
    llm_asked: int = 0  # conflict hunks the ladder left to the model
    llm_timeouts: int = 0  # of those, the model did not answer in time
    llm_not_sent: int = 0  # conflict hunks left to the model but over its per-request budget
    llm_tokens: int = 0
    llm_seconds: float = 0.0
    verified: bool = False  # --verify commands ran and passed on the result

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self.pair), "class": self.cls, "rungs": self.rungs, "prerequisites": self.prerequisites,
                "reason": self.reason, "flagged": self.flagged, "warnings": self.warnings,
                "human_kept_lines": self.kept, "prerequisites_present": self.prereqs_present,
                **({"llm": {"asked": self.llm_asked, "rejected": self.llm_rejected, "timeouts": self.llm_timeouts,
                            "not_sent": self.llm_not_sent, "tokens": self.llm_tokens, "seconds": self.llm_seconds}}
                   if self.llm_asked or self.llm_not_sent else {}),
                **({"verified": True} if self.verified else {})}


# --- mining ---------------------------------------------------------------------------------------


def mine(git: Git, main: str, branches: list[str], since: str | None = None) -> tuple[list[Pair], Counter[str]]:
    """Pairs (original on main, human backport on a branch), and how many each method found."""
    since_args = [f"--since={since}"] if since else []
    found: dict[tuple[str, str], Pair] = {}
    counts: Counter[str] = Counter()
    unmatched: dict[str, list[tuple[str, str]]] = defaultdict(list)  # branch -> (human, target)
    by_pr = _main_by_pr(git, main, since_args)
    for branch in branches:
        base = git.out("merge-base", main, branch)
        for c in log_commits(git, "--no-merges", *since_args, f"{base}..{branch}"):
            sha, subject, body, target = c.sha, c.subject, c.body, c.parents[0]
            original, method = None, None
            if m := TRAILER.search(body):
                original, method = m.group(1), "trailer"
            elif m := BACKPORT_OF.search(body):
                original, method = m.group(1), "backport-of"
            elif (m := PR_SUFFIX.search(subject)) and m.group(1) in by_pr:
                original, method = by_pr[m.group(1)], "subject"
            if original and method:
                full = git.rev(original)
                if full and full != sha:
                    if (full, sha) not in found:
                        found[(full, sha)] = Pair(full, sha, target, branch, method)
                        counts[method] += 1
                    continue
            unmatched[branch].append((sha, target))
    # The rest by equal patch: one patch-id pass over main since the oldest branch point.
    if unmatched:
        bases = [git.out("merge-base", main, b) for b in unmatched]
        oldest = git.out("merge-base", "--octopus", *bases) if len(bases) > 1 else bases[0]
        main_ids = patch_ids(git, ["--no-merges", *since_args, f"{oldest}..{main}"])
        by_id = {pid: sha for sha, pid in main_ids.items()}
        for branch, commits in unmatched.items():
            ids = patch_ids(git, ["--no-walk=unsorted", *(h for h, _ in commits)])
            for human, target in commits:
                if (pid := ids.get(human)) and pid in by_id and (by_id[pid], human) not in found:
                    found[(by_id[pid], human)] = Pair(by_id[pid], human, target, branch, "patch-id")
                    counts["patch-id"] += 1
    # The rest by subject, release prefix and (#N) removed, when exactly one main commit since the
    # branch point has it: backports that changed the patch and carry no trailer.
    matched = {p.human for p in found.values()}
    for branch, commits in unmatched.items():
        rest = [(h, t) for h, t in commits if h not in matched]
        if not rest:
            continue
        base = git.out("merge-base", main, branch)
        by_subject: dict[str, list[str]] = defaultdict(list)
        for c in log_commits(git, "--no-merges", *since_args, f"{base}..{main}"):
            by_subject[bare_subject(c.subject)].append(c.sha)
        subjects = dict(line.split(" ", 1) for line in git.out(
            "log", "--no-walk=unsorted", "--format=%H %s", *(h for h, _ in rest)).splitlines() if " " in line)
        for human, target in rest:
            key = bare_subject(subjects.get(human, ""))
            if key and len(shas := by_subject.get(key, [])) == 1 and (shas[0], human) not in found:
                found[(shas[0], human)] = Pair(shas[0], human, target, branch, "subject-prefix")
                counts["subject-prefix"] += 1
    return sorted(found.values(), key=lambda p: (p.branch, p.human)), counts


def bare_subject(subject: str) -> str:
    """A subject without its release prefixes and trailing (#N): what a backport and its original share."""
    prev = None
    while prev != subject:
        prev, subject = subject, RELEASE_PREFIX.sub("", subject, count=1)
    return TRAILING_PR.sub("", subject).strip()


def _main_by_pr(git: Git, main: str, since_args: list[str]) -> dict[str, str]:
    by_pr: dict[str, str] = {}
    for c in log_commits(git, "--first-parent", "--no-merges", *since_args, main):
        if m := PR_SUFFIX.search(c.subject):
            by_pr.setdefault(m.group(1), c.sha)
    return by_pr


# --- replay ---------------------------------------------------------------------------------------


class _Progress:
    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.done, self.out = total, 0, out
        self.lock = threading.Lock()
        self.show = out.isatty()

    def step(self, n: int = 1) -> None:
        with self.lock:
            self.done += n
            if self.show:
                filled = int(30 * self.done / max(self.total, 1))
                self.out.write(f"\r  [{'#' * filled}{' ' * (30 - filled)}] {self.done}/{self.total}")
                if self.done >= self.total:
                    self.out.write("\n")
                self.out.flush()


def replay(repo_path: Path, main: str, pairs: list[Pair], jobs: int, progress: TextIO,
           llm: HunkResolver | None = None, verify: tuple[Command, ...] = (),
           sandbox: Sandbox | None = None, context_tokens: int = 3000) -> list[Result]:
    """Replay every pair. Clean picks are decided in memory; conflicts go through the engine's
    ladder in worktrees of a throwaway clone (so the repository and its rerere cache stay untouched).
    With `verify` commands, every pair goes through the engine, which runs them in its worktree."""
    with tempfile.TemporaryDirectory(prefix="backportbot-eval-") as tmp:
        clone = Path(tmp) / "repo"
        Git(Path(tmp)).run("clone", "--quiet", "--shared", "--no-checkout", "--mirror", str(repo_path), str(clone))
        git = Git(clone)
        bar = _Progress(len(pairs), progress)
        results: dict[int, Result] = {}
        with Predictor(git, keep_objects=True) as predictor:  # the clone's: a clean pick's tree is reread
            commits = {c.sha: c for c in read_commits(git, *dict.fromkeys(p.original for p in pairs))}
            picks = [Pick(p.original, (commits[p.original].parents or (None,))[0], p.target) for p in pairs]
            preds = predictor.predict(picks)
            humans = predictor.trees([p.human for p in pairs])
        clean = {i for i, pred in enumerate(preds) if pred.clean and not verify}
        engine = Engine(llm, sandbox, llm_context=context_tokens)
        ws = Workspace.in_place(clone, Path(tmp) / "data")
        main_ref = ws.branch_ref(main) or main
        human_backports = _human_backports(pairs)

        def one(i: int) -> None:
            pair = pairs[i]
            try:
                if i in clean:  # decided in memory, checked as a real backport's clean pick is
                    results[i] = _clean(git, pair, commits[pair.original].parents, preds[i].tree, humans[i])
                else:
                    results[i] = _replay_one(git, engine, ws, main_ref, i, pair, human_backports, verify)
            except Exception as exc:  # one odd pair never stops the evaluation
                results[i] = Result(pair, "other", reason=f"{type(exc).__name__}: {exc}")
            bar.step()

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, range(len(pairs))))
    return [results[i] for i in range(len(pairs))]


def _clean(git: Git, pair: Pair, parents: tuple[str, ...], tree: str | None, human_tree: str | None) -> Result:
    """A pair that picks cleanly, as the engine would commit it: the names check's flags, and the
    tests it leaves out."""
    warnings: list[str] = []
    if parents and tree:
        warnings, leave_out = check_names(git, pair.original, parents[0], pair.target, pair.branch)
        if leave_out:
            tree = testfiles.tree_without(git, tree, pair.target, leave_out)
    return Result(pair, "reproduced" if tree == human_tree else "clean-different", warnings=warnings,
                  flagged=bool(warnings))


def already_there(git: Git, target: str, main_ref: str, named: list[str]) -> list[str]:
    """The named prerequisites the target already carries (ancestor, trailer, (#N), patch-id):
    naming them sends people after nothing, so eval counts them (the target: none)."""
    if not named:
        return []
    there = branch_index(git, target, main_ref).presence(read_commits(git, *named), own_pr=True)
    return [sha for sha in named if sha in there]


def _changed_lines(git: Git, a: str, b: str) -> Counter[str]:
    """The multiset of a diff's added and removed lines, whitespace removed (context not counted)."""
    diff = git.run("diff", "--no-color", "--no-renames", "-U0", a, b, check=False).stdout
    return Counter(line[0] + re.sub(r"\s+", "", line[1:]) for line in diff.splitlines()
                   if line[:1] in "+-" and not line.startswith(("+++ ", "--- ")))


def human_kept(git: Git, pair: Pair, parent: str) -> bool:
    """Whether the human's backport adds and removes the same lines as the fix (only the context
    around them drifted), or changed them."""
    return _changed_lines(git, pair.target, pair.human) == _changed_lines(git, parent, pair.original)


def _human_backports(pairs: list[Pair]) -> dict[str, dict[str, str]]:
    """branch -> original -> the human backport of it."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for p in pairs:
        out[p.branch][p.original] = p.human
    return out


def _replay_one(git: Git, engine: Engine, ws: Workspace, main_ref: str, n: int, pair: Pair,
                human_backports: dict[str, dict[str, str]], verify: tuple[Command, ...] = ()) -> Result:
    try:
        source = resolve(git, pair.original, main_ref)
    except BackportFailure as f:
        return Result(pair, "other", reason=f"{f.kind}: {f.reason}")
    outcome = engine.run(Plan(ws, source, pair.branch, pair.target, main_ref, verify, label=f"eval-{n}",
                              result_name=f"eval-{n}"), Silent())
    return _llm_figures(_scored(git, pair, source, outcome, main_ref, human_backports), outcome)


def _llm_figures(r: Result, outcome: Outcome) -> Result:
    """What the model was asked on this pair, what it cost, and whether --verify confirmed it."""
    notes = [str(h.detail.get("note", "")) for h in outcome.hunks if h.resolved_by == "unresolved"]
    r.llm_timeouts = sum(note.startswith("LLM timed out") for note in notes)
    r.llm_not_sent = sum(note.startswith("LLM not asked") for note in notes)
    r.llm_asked = sum(h.resolved_by == "llm" for h in outcome.hunks) + r.llm_rejected + r.llm_timeouts
    r.llm_tokens, r.llm_seconds = outcome.llm.tokens, outcome.llm.seconds
    r.verified = outcome.succeeded and bool(outcome.verified) and all(c.ok for c in outcome.verified)
    return r


def _scored(git: Git, pair: Pair, source: Source, outcome: Outcome, main_ref: str,
            human_backports: dict[str, dict[str, str]]) -> Result:
    """The pair's class: the engine's result against the human's."""
    rungs = [h.resolved_by for h in outcome.hunks]
    flagged = any("names" in w for w in outcome.warnings)
    warnings = list(outcome.warnings)
    rejected = sum(str(h.detail.get("note", "")).startswith("LLM answer rejected") for h in outcome.hunks)
    parent = (source.commits[-1].parents or ("",))[0]
    kept = human_kept(git, pair, parent) if parent and (rungs or outcome.conflicts) else None
    if outcome.succeeded:
        trees = git.out("rev-parse", f"{outcome.result_commit}^{{tree}}", f"{pair.human}^{{tree}}").split()
        same = trees[0] == trees[1]
        git.run("update-ref", "-d", f"refs/heads/{outcome.result_branch}", check=False)
        if not rungs:  # it applied cleanly (only with --verify does a clean pair come this way)
            return Result(pair, "reproduced" if same else "clean-different", flagged=flagged, warnings=warnings)
        return Result(pair, "resolved-equal" if same else "resolved-different", rungs, flagged=flagged,
                      llm_rejected=rejected, warnings=warnings, kept=kept)
    failure = outcome.failure
    assert failure is not None
    prereqs = [p["commit"] for p in failure.details.get("prerequisites", [])]
    named = [p["commit"] for p in failure.details.get("prerequisites", []) if p.get("named", True)]
    if failure.kind != "conflict":
        return Result(pair, "other", rungs, reason=f"{failure.kind}: {failure.reason}", llm_rejected=rejected,
                      warnings=warnings, kept=kept)
    if not prereqs:
        return Result(pair, "unresolved", rungs, reason=failure.reason, llm_rejected=rejected, warnings=warnings,
                      kept=kept)
    present = already_there(git, pair.target, main_ref, named)
    # Confirmed: the human also backported one of them to this branch, no later than this fix
    # (often in a parallel PR, so it is not in this backport's history).
    on_branch = human_backports.get(pair.branch, {})
    with git.objects() as repo:
        def when(sha: str) -> int:
            return int(repo.commit(sha).committed_date)

        confirmed = any(p in on_branch and when(on_branch[p]) <= when(pair.human) for p in prereqs)
    return Result(pair, "unresolved-prereq-confirmed" if confirmed else "unresolved-prereq-named", rungs, prereqs,
                  failure.reason, llm_rejected=rejected, warnings=warnings, kept=kept, prereqs_present=present)


# --- report ---------------------------------------------------------------------------------------


def tables(results: list[Result], counts: Counter[str], seconds: float) -> str:
    lines = ["Pairs mined: " + (", ".join(f"{m} {n}" for m, n in counts.most_common()) or "none")
             + f" ({sum(counts.values())} in all)", ""]
    short = ("reproduced", "clean≠", "resolved=", "resolved≠", "prereq✓", "prereq?", "unresolved", "other")
    header = f"{'branch':<24}{'pairs':>6}" + "".join(f"{s:>12}" for s in short)
    lines += [header, "-" * len(header)]
    by_branch: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        by_branch[r.pair.branch][r.cls] += 1
    total: Counter[str] = Counter()
    for branch in sorted(by_branch):
        c = by_branch[branch]
        total.update(c)
        lines.append(f"{branch:<24}{sum(c.values()):>6}" + "".join(f"{c[k]:>12}" for k in CLASSES))
    n = sum(total.values())
    lines.append(f"{'all':<24}{n:>6}" + "".join(f"{total[k]:>12}" for k in CLASSES))
    if n:
        lines.append(f"{'share':<24}{'':>6}" + "".join(f"{total[k] / n:>12.1%}" for k in CLASSES))
    by_method: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        by_method[r.pair.method][r.cls] += 1
    for method in sorted(by_method):
        c = by_method[method]
        lines.append(f"{'found by ' + method:<24}{sum(c.values()):>6}" + "".join(f"{c[k]:>12}" for k in CLASSES))
    lines += ["", "Resolution ladder (conflicted pairs only):",
              f"{'rung':<16}{'hunks':>8}{'pairs':>8}{'pairs equal':>13}{'pairs different':>17}"]
    hunks: Counter[str] = Counter()
    pairs_by: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        hunks.update(r.rungs)
        for rung in set(r.rungs):
            pairs_by[rung][r.cls] += 1
    for rung, count in hunks.most_common():
        p = pairs_by[rung]
        lines.append(f"{rung:<16}{count:>8}{sum(p.values()):>8}{p['resolved-equal']:>13}{p['resolved-different']:>17}")
    lines += ["", "Conflicting pairs, by whether the human kept the fix's +/- lines (only the context drifted):",
              f"{'':<24}{'pairs':>6}" + "".join(f"{s:>12}" for s in short[2:])]
    by_kept: dict[bool, Counter[str]] = defaultdict(Counter)
    rung_kept: dict[tuple[str, bool], Counter[str]] = defaultdict(Counter)
    for r in results:
        if r.kept is not None:
            by_kept[r.kept][r.cls] += 1
            for rung in set(r.rungs):
                rung_kept[(rung, r.kept)][r.cls] += 1
    for kept in (True, False):
        c = by_kept[kept]
        lines.append(f"{'kept' if kept else 'changed':<24}{sum(c.values()):>6}"
                     + "".join(f"{c[k]:>12}" for k in CLASSES[2:]))
    lines.append(f"{'rung, kept/changed':<24}{'pairs':>8}{'equal':>8}{'different':>11}")
    for rung, _ in hunks.most_common():
        for kept in (True, False):
            c = rung_kept[(rung, kept)]
            if c:
                lines.append(f"{rung + (' kept' if kept else ' changed'):<24}{sum(c.values()):>8}"
                             f"{c['resolved-equal']:>8}{c['resolved-different']:>11}")
    kept_n = sum(by_kept[True].values())
    kept_ok = by_kept[True]["resolved-equal"]
    different = [r for r in results if r.cls in ("clean-different", "resolved-different")]
    silent = [r for r in different if not r.warnings]
    named = sum(len(r.prerequisites) for r in results)
    present = sum(len(r.prereqs_present) for r in results)
    lines += ["", f"Context drifted (kept) conflicts reproduced: {kept_ok}/{kept_n}"
              + (f" ({kept_ok / kept_n:.1%})" if kept_n else ""),
              "Different from the human: " + ", ".join(
                  f"{cls} {sum(r.cls == cls for r in different)} "
                  f"({sum(r.cls == cls and bool(r.warnings) for r in different)} flagged or explained)"
                  for cls in ("clean-different", "resolved-different"))
              + f"; neither flagged nor explained: {len(silent)}",
              f"Prerequisites named that were already there: {present} (of {named} named, "
              f"in {sum(bool(r.prereqs_present) for r in results)} failures)"]
    baseline = total["reproduced"]
    lines += ["", f"Plain cherry-pick reproduces the human backport: {baseline}/{n}"
              + (f" ({baseline / n:.1%})" if n else "")
              + f"; the ladder adds {total['resolved-equal']} equal and {total['resolved-different']} different.",
              f"Flagged for approval by the names check: {sum(r.flagged for r in results)}.",
              *llm_table(results),
              f"Replayed {n} pairs in {seconds:.1f} s = {n / seconds if seconds else 0:.1f} pairs/s."]
    return "\n".join(lines)


def llm_table(results: list[Result]) -> list[str]:
    """The model on the conflicts the deterministic ladder leaves: per pair with a hunk sent to it,
    resolved equal to the human's, differently (each needs a maintainer's review; with --verify,
    how many the build and tests confirm) or refused (a check failed, it declined, or it timed
    out), and what a hunk cost."""
    asked = [r for r in results if r.llm_asked]
    not_sent = sum(r.llm_not_sent for r in results)
    over = f" {not_sent} hunks were not sent: each conflict alone was over the per-request budget." if not_sent else ""
    if not asked:
        return ["LLM rung: no conflict reached the model." + over]
    n, hunks = len(asked), sum(r.llm_asked for r in asked)
    equal = [r for r in asked if r.cls == "resolved-equal"]
    different = [r for r in asked if r.cls == "resolved-different"]
    refused = n - len(equal) - len(different)
    timed_out = sum(r.llm_timeouts > 0 for r in asked)
    verified = sum(r.verified for r in equal + different)
    tokens, seconds = sum(r.llm_tokens for r in asked), sum(r.llm_seconds for r in asked)

    def share(k: int) -> str:
        return f"{k} ({k / n:.0%})"

    header = (f"{'pairs':>6}{'equal':>12}{'different':>12}{'refused':>12}{'timed out':>11}{'verified':>10}"
              f"{'hunks':>7}{'tokens/hunk':>13}{'s/hunk':>8}")
    return ["", "LLM rung, on the conflicts the ladder leaves (pairs with a hunk sent to the model; "
                "'different' each need review, 'verified' passed --verify):", header, "-" * len(header),
            f"{n:>6}{share(len(equal)):>12}{share(len(different)):>12}{share(refused):>12}{timed_out:>11}"
            f"{share(verified) if any(r.verified for r in results) else '-':>10}{hunks:>7}"
            f"{tokens / hunks:>13,.0f}{seconds / hunks:>8.1f}",
            f"LLM rung: {len(equal)} pairs resolved equal to the human's, {len(different)} different, "
            f"{sum(r.llm_rejected for r in results)} hunks rejected by the checks or declined, "
            f"{sum(r.llm_timeouts for r in results)} timed out." + over]


def run(repo: Path, main: str | None, branches: list[str] | None, since: str | None, limit: int | None, jobs: int,
        json_file: Path | None, out: TextIO | None = None, progress: TextIO | None = None,
        llm: HunkResolver | None = None, verify: tuple[Command, ...] = (), sandbox: Sandbox | None = None,
        context_tokens: int = 3000) -> int:
    out, progress = out or sys.stdout, progress or sys.stderr
    git = Git(repo)
    if main is None:
        main = next((b for b in ("main", "master", "unstable", "trunk") if git.rev(f"refs/heads/{b}")), "main")
    if not branches:
        listed = git.out("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
        branches = [b for b in listed if b != main and not b.startswith("backport/")]
    start = time.monotonic()
    pairs, counts = mine(git, main, branches, since)
    if limit and len(pairs) > limit:  # an even sample across branches and time
        step = len(pairs) / limit
        pairs = [pairs[int(i * step)] for i in range(limit)]
    mined = time.monotonic()
    progress.write(f"mined {len(pairs)} pairs in {mined - start:.1f} s; replaying with {jobs} jobs\n")
    results = replay(repo, main, pairs, jobs, progress, llm, verify, sandbox, context_tokens)
    out.write(tables(results, counts, time.monotonic() - mined) + "\n")
    if json_file:
        json_file.write_text(json.dumps([r.as_json() for r in results], indent=1))
    return 0
