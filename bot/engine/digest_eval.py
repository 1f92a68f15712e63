"""`backportbot eval digest`: replay past weeks of a repository as of each week's end (the main
branch and every release branch as they were then), run the digest over the week's merges, and
score it against what people backported later.

A week's window is its main-branch commits (first parent) after the head at its start, up to
the head at its end, as a digest since the previous one sees them. A commit was backported to a
branch when the branch's commits made after the week's end carry it: a trailer naming it or one
of its pull request's commits, its PR number in a subject ("(#N)", a backport-N or pr-N head
branch), an equal patch-id, or, for a proposed candidate, its effect (its added lines at their
place, not there at the week's end). Only branches that got commits after the week's end count.

Scores: precision and recall over commits (overall, per category, and recall on true fixes:
backported commits that change code, not only tests, docs or build files), and the outlook's
accuracy against a real cherry-pick of each proposed pair in a scratch worktree.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.engine import candidates as cands
from bot.engine import prereq
from bot.engine.git import Git
from bot.engine.policy import ORIGIN, patch_ids
from bot.engine.source import PR_SUFFIX, Commit, log_commits
from bot.engine.testfiles import is_test

HORIZON_DAYS = 120  # later backports are looked for this long after a week's end


@dataclass
class Pair:
    key: str
    branch: str
    outlook: str
    real: str  # clean | conflicts | empty | skipped
    right: bool


@dataclass
class Week:
    start: str
    end: str
    head: str
    branches: list[str]
    seconds: float
    proposed: list[str] = field(default_factory=list)  # keys
    backported: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)  # "key category title"
    false_positives: list[str] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    categories: dict[str, str] = field(default_factory=dict)  # key -> category
    code: dict[str, bool] = field(default_factory=dict)  # key -> changes code (not only tests, docs, build)


def _at(git: Git, ref: str, when: datetime) -> str | None:
    """The branch's head as it was at `when` (first parent, by commit date)."""
    return git.out("rev-list", "-1", "--first-parent", f"--before={when:%Y-%m-%d %H:%M:%S %z}", ref) or None


def _later(git: Git, then: str, ref: str, end: datetime) -> list[Commit]:
    """The branch's commits made after the week's end, within the horizon."""
    until = end + timedelta(days=HORIZON_DAYS)
    return log_commits(git, f"--before={until:%Y-%m-%d %H:%M:%S %z}", f"{then}..{ref}")


def _backported(git: Git, commits: list[Commit], own: dict[str, list[Commit]], files: dict[str, list[str]],
                later: list[Commit]) -> set[str]:
    """Which of `commits` the later branch commits carry (trailer, PR number, patch-id)."""
    origins = {o.lower() for c in later for o in ORIGIN.findall(c.body)}
    prs = {n for c in later for n in [*(m.group(1) for m in [PR_SUFFIX.search(c.subject)] if m),
                                      *re.findall(r"\(#(\d+)\)", c.subject), *cands.BACKPORT_HEAD.findall(c.subject)]}
    found = set()
    for c in commits:
        shas = [c.sha, *(m.sha for m in own.get(c.sha, []))]
        if any(s.startswith(o) for o in origins for s in shas) or (c.pr_number and str(c.pr_number) in prs):
            found.add(c.sha)
    rest = [c for c in commits if c.sha not in found]
    singles = [c.sha for c in later if len(c.parents) == 1]
    if rest and singles:
        theirs = set(patch_ids(git, ["--no-walk=unsorted", *singles]).values())
        mine = patch_ids(git, ["--no-walk=unsorted", "--first-parent", "-m", *(c.sha for c in rest)])
        members = {m.sha: c.sha for c in rest for m in own.get(c.sha, [])}
        found.update(c.sha for c in rest if mine.get(c.sha) in theirs)
        if members:  # a merged PR's own commits picked one by one
            ids = patch_ids(git, ["--no-walk=unsorted", *members])
            found.update(members[s] for s, pid in ids.items() if pid in theirs)
    return found


def _real_pick(wt: Git, onto: str, commit: Commit) -> str:
    """clean, conflicts or empty: a real `git cherry-pick` in the scratch worktree."""
    if wt.out("rev-parse", "HEAD") != onto:
        wt.run("checkout", "-q", "-f", "--detach", onto)
    mainline = ["-m", "1"] if len(commit.parents) > 1 else []
    res = wt.run("cherry-pick", "--no-commit", *mainline, commit.sha, check=False)
    if res.returncode != 0:
        # Neither a conflict nor an empty pick: git refused (e.g. a file the clone lacks): not scored.
        out = "conflicts" if wt.run("diff", "--name-only", "--diff-filter=U", check=False).stdout.strip() \
            else ("empty" if "empty" in (res.stderr + res.stdout) else "skipped")
    else:
        out = "empty" if wt.ok("diff", "--cached", "--quiet", "HEAD") else "clean"
    wt.run("cherry-pick", "--abort", check=False)
    wt.run("reset", "-q", "--hard", onto, check=False)
    return out


def _right(outlook: str, real: str) -> bool:
    if outlook == "clean":
        return real == "clean"
    if outlook.startswith("present"):
        return real == "empty"
    return real == "conflicts"  # conflicts ..., does not apply ...


def _weeks(weeks: int | None, since: str | None, until: str | None, tz: str) -> list[tuple[datetime, datetime]]:
    zone = ZoneInfo(tz)
    if until:
        end = datetime.strptime(cands.day_start(until, tz), "%Y-%m-%d %H:%M:%S %z")
    else:  # the Monday 00:00 eight weeks ago: people have had time to backport what it proposed
        today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        end = today - timedelta(days=today.weekday()) - timedelta(weeks=8)
    if since:
        start = datetime.strptime(cands.day_start(since, tz), "%Y-%m-%d %H:%M:%S %z")
        count = max(1, round((end - start) / timedelta(weeks=1)))
    else:
        count = weeks or 4
        start = end - timedelta(weeks=count)
    return [(start + timedelta(weeks=i), start + timedelta(weeks=i + 1)) for i in range(count)]


def replay_week(git: Git, wt: Git | None, main: str, branches: Sequence[str], start: datetime, end: datetime,
                fix_labels: Sequence[str], include: Collection[str]) -> Week | None:
    head, first = _at(git, main, end), _at(git, main, start)
    if head is None or first is None or head == first:
        return None
    refs: dict[str, str] = {}
    later: dict[str, list[Commit]] = {}
    for b in branches:
        then = _at(git, b, end)
        if then is None or git.is_ancestor(then, head):  # not cut yet (or merged back)
            continue
        after = _later(git, then, b, end)
        if after:  # a branch nobody touched after the week is not maintained
            refs[b], later[b] = then, after
    week = Week(f"{start:%Y-%m-%d}", f"{end:%Y-%m-%d}", head[:10], list(refs), 0.0)
    if not refs:
        return week
    clock = time.perf_counter()
    found = cands.find(git, head, refs, fix_labels, first, include=include)
    week.seconds = time.perf_counter() - clock
    commits = log_commits(git, "--first-parent", f"{first}..{head}")
    classes, files, own = cands.classify_commits(git, commits, fix_labels)
    by_sha = {c.sha: c for c in commits}
    backported: set[str] = set()
    for b in refs:
        backported |= _backported(git, commits, own, files, later[b])
    proposed = {c.commit: c for c in found}
    # A proposed candidate whose effect reached a branch later, adapted, counts as backported.
    for sha, cand in proposed.items():
        if sha in backported:
            continue
        for b in cand.suggested:
            paths = set(files.get(sha, []))
            tip = later[b][0].sha
            if paths and prereq._effect_present(git, sha, tip, paths) \
                    and not prereq._effect_present(git, sha, refs[b], paths):
                backported.add(sha)
                break

    def key(c: Commit) -> str:
        return f"#{c.pr_number}" if c.pr_number else c.sha[:10]

    for c in commits:
        week.categories[key(c)] = classes[c.sha].category
        week.code[key(c)] = any(not is_test(p) and not cands.DOC_PATH.search(p) and not cands.BUILD_PATH.search(p)
                                for p in files.get(c.sha, []))
    week.proposed = [key(by_sha[s]) for s in proposed]
    week.backported = [key(c) for c in commits if c.sha in backported]
    week.misses = [f"{key(c)} [{classes[c.sha].category}] {cands.title(c, own.get(c.sha, ()))}" for c in commits
                   if c.sha in backported and c.sha not in proposed]
    week.false_positives = [f"{key(by_sha[s])} [{cand.category}] {cand.title} ({'; '.join(cand.reasons)})"
                            for s, cand in proposed.items() if s not in backported]
    if wt is not None:  # branch by branch: one checkout each
        for b in refs:
            for sha, cand in proposed.items():
                outlook = cand.outlook.get(b, "present")
                if outlook == "present":  # by history (ancestor, trailer, PR number, patch-id): nothing to pick
                    continue
                real = _real_pick(wt, refs[b], by_sha[sha])
                if real != "skipped":
                    week.pairs.append(Pair(cand.key, b, outlook, real, _right(outlook, real)))
    return week


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f} ({a}/{b})" if b else "n/a"


def table(weeks: list[Week]) -> str:
    """The scores, overall and per category, and the lists of misses and false positives."""
    tp = fp = fn = 0
    fixes = fixes_found = 0
    per: dict[str, Counter[str]] = {c: Counter() for c in cands.CATEGORIES}
    for w in weeks:
        back, prop = set(w.backported), set(w.proposed)
        tp += len(back & prop)
        fp += len(prop - back)
        fn += len(back - prop)
        fixes += sum(w.code[k] for k in back)
        fixes_found += sum(w.code[k] for k in back & prop)
        for k, cat in w.categories.items():
            per[cat]["commits"] += 1
            per[cat]["backported"] += k in back
            per[cat]["proposed"] += k in prop
            per[cat]["both"] += k in back and k in prop
    pairs = [p for w in weeks for p in w.pairs]
    seconds = [w.seconds for w in weeks if w.branches]
    lines = [f"weeks: {len(weeks)} ({weeks[0].start} to {weeks[-1].end})" if weeks else "weeks: 0",
             f"commits on main: {sum(len(w.categories) for w in weeks)}; backported later: {tp + fn}; "
             f"proposed: {tp + fp}",
             f"precision: {_ratio(tp, tp + fp)}",
             f"recall: {_ratio(tp, tp + fn)}",
             f"recall on true fixes (backported, changing code): {_ratio(fixes_found, fixes)}",
             f"outlook right against a real cherry-pick: {_ratio(sum(p.right for p in pairs), len(pairs))}",
             f"digest time per week: max {max(seconds, default=0):.2f} s, "
             f"mean {sum(seconds) / max(len(seconds), 1):.2f} s",
             "",
             f"{'category':<20}{'commits':>8}{'backported':>11}{'proposed':>9}{'precision':>16}{'recall':>16}"]
    for cat, name in cands.CATEGORIES.items():
        n = per[cat]
        if n["commits"]:
            lines.append(f"{name:<20}{n['commits']:>8}{n['backported']:>11}{n['proposed']:>9}"
                         f"{_ratio(n['both'], n['proposed']):>16}{_ratio(n['both'], n['backported']):>16}")
    lines += ["", "misses (backported later, not proposed):"]
    lines += [f"  {w.end} {m}" for w in weeks for m in w.misses] or ["  (none)"]
    lines += ["", "false positives (proposed, never backported):"]
    lines += [f"  {w.end} {m}" for w in weeks for m in w.false_positives] or ["  (none)"]
    wrong = [p for p in pairs if not p.right]
    lines += ["", "outlook wrong:"]
    lines += [f"  {p.key} {p.branch}: said {p.outlook!r}, a cherry-pick was {p.real}" for p in wrong] or ["  (none)"]
    return "\n".join(lines)


def run(repo: Path, main: str | None, branches: list[str] | None, weeks: int | None, since: str | None,
        until: str | None, json_file: Path | None, fix_labels: Sequence[str] = ("bug", "security", "critical"),
        timezone: str = "UTC", include: Collection[str] = cands.PROPOSED, outlook: bool = True) -> int:
    """Replay the weeks, print the table; the per-week details go to `json_file`."""
    git = Git(repo)
    names = git.out("for-each-ref", "--format=%(refname:short)", "refs/heads").split()
    main = main or next((m for m in ("main", "master", "unstable", "trunk") if m in names), None)
    if main is None:
        print("eval digest: name the main branch with --main")
        return 2
    branches = branches or [b for b in names if b != main]
    scratch = Path(tempfile.mkdtemp(prefix="digest-eval-"))
    wt: Git | None = None
    try:
        if outlook:
            git.run("worktree", "add", "-q", "--detach", str(scratch / "wt"), main)
            wt = Git(scratch / "wt")
        done = []
        for start, end in _weeks(weeks, since, until, timezone):
            week = replay_week(git, wt, main, branches, start, end, fix_labels, include)
            if week is not None:
                done.append(week)
                print(f"week to {week.end}: {len(week.categories)} commits, {len(week.proposed)} proposed, "
                      f"{len(week.backported)} backported later, {week.seconds:.2f} s", flush=True)
        print(table(done))
        if json_file is not None:
            json_file.write_text(json.dumps([asdict(w) for w in done], indent=1))
        return 0
    finally:
        if wt is not None:
            git.run("worktree", "remove", "--force", str(scratch / "wt"), check=False)
        shutil.rmtree(scratch, ignore_errors=True)
