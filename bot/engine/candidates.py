"""Candidate discovery and ranking: fixes merged on the main branch that a release branch lacks,
each with its category and the evidence for it, and how a backport would go on every branch,
decided in batches (one git pass per branch, one in-memory merge batch for all pairs)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.engine import prereq
from bot.engine.errors import BackportFailure, BadInput
from bot.engine.git import Git
from bot.engine.policy import ORIGIN, branch_index, find_present, patch_ids
from bot.engine.predict import Pick, Predictor
from bot.engine.source import (
    MERGE_PR,
    PR_SUFFIX,
    Commit,
    changed_paths,
    log_commits,
    message_labels,
    read_commits,
    resolve,
)
from bot.engine.testfiles import is_test

# Categories, most severe first: the digest's order. Names people read in the digest.
CATEGORIES = {"security": "security", "crash": "crash or data loss", "bug": "bug", "build": "build",
              "test-only": "test-only", "docs": "docs/typo", "other": "other"}
PROPOSED = ("security", "crash", "bug", "build")  # proposed unless a repository says otherwise
OPTIONAL = ("test-only", "docs")  # proposed only when a repository's `digest_include` names them
FIX_CATEGORIES = frozenset({"security", "crash", "bug", "build", "test-only", "docs"})  # all but "other"

SECURITY = re.compile(r"\b(CVE-\d{4}-\d{4,}|GHSA-[\w-]+|security|vulnerab\w*|exploit\w*)", re.I)
CRASH = re.compile(r"\b(crash\w*|segfault\w*|SIGSEGV|SIGABRT|use[- ]after[- ]free|UAF|double[- ]free|"
                   r"null[- ]pointer|NULL (?:pointer )?deref\w*|deref\w* (?:of )?(?:a )?NULL|"
                   r"(?:buffer|heap|stack|integer) (?:over|under)(?:flow|run)\w*|out[- ]of[- ]bounds|"
                   r"data loss|los(?:e|es|ing) data|corrupt\w*|deadlock\w*|hangs?|hanging|infinite loop|"
                   r"assert(?:ion)? fail\w*|abort(?:s|ed)?|panic\w*)\b", re.I)
FIX_WORDS = re.compile(r"\b(fix(?:es|ed|ing)?|bug|leak\w*|race|regression|wrong\w*|incorrect\w*|broken|"
                       r"invalid|mishandl\w*|erroneous\w*|overflow\w*|underflow|mistake\w*)\b", re.I)
BROKEN = re.compile(r"\b(fix\w*|fail\w*|errors?|broken|break\w*|warnings?|unbreak\w*|regression)\b", re.I)
TYPO = re.compile(r"\b(typos?|spelling|misspell\w*|grammar|wording)\b", re.I)
BUILD_WORDS = re.compile(r"\b(build(?:ing|s)?|compil\w*|warnings?|linker|link error|cmake|meson|makefile|"
                         r"configure|toolchain)\b", re.I)
# How a message says which issue it fixes: "Fixes #1051", "Closes: #12", a Linux-style "Fixes: <sha>".
LINKED = re.compile(r"\b(?:fix(?:es|ed)?|close[sd]?|resolve[sd]?)\b:?\s+(?:[\w.-]+/[\w.-]+)?#(\d+)"
                    r"|^Fixes:\s+[0-9a-f]{7,40}\b", re.I | re.M)
# A described wrong behaviour in a message body.
WRONG = re.compile(r"\b(incorrect(?:ly)?|wrong(?:ly)?|erroneous(?:ly)?|instead of|should (?:not )?(?:be|have|"
                   r"return|use)|fails? to|failed to|does(?:n't| not) work|regression|was not (?:being )?"
                   r"(?:set|sent|freed|cleared|updated|handled|installed|removed|released))\b", re.I)
# A conventional prefix, numpy's upper-case ones and a component ("bgpd: ") alike.
PREFIX = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?([\w./+-]+(?:\s*,\s*[\w./+-]+)*)(?:\([^)]*\))?!?:\s+")
TYPES = {
    **dict.fromkeys(("fix", "fixes", "fixed", "bug", "bugfix", "hotfix", "regression"), "bug"),
    **dict.fromkeys(("security", "sec"), "security"),
    **dict.fromkeys(("doc", "docs", "documentation", "typo", "man"), "docs"),
    **dict.fromkeys(("test", "tests", "tst", "topotests", "testing"), "test-only"),
    **dict.fromkeys(("build", "bld", "ci", "packaging", "redhat", "debian"), "build"),
    **dict.fromkeys(("feat", "feature", "enh", "refactor", "maint", "chore", "style", "sty", "perf", "api", "dep",
                     "depr", "rel", "release", "bench", "rev", "revert", "simd"), "other"),
}
DOC_PATH = re.compile(r"(^|/)(docs?|documentation|man)/|\.(md|rst|adoc|texi|txt)$|"
                      r"(^|/)(README|NEWS|CHANGES|CHANGELOG|AUTHORS|COPYING|LICENSE)[^/]*$", re.I)
BUILD_PATH = re.compile(r"(^|/)(Makefile[^/]*|[^/]*\.(am|ac|m4|mk|cmake)|CMakeLists\.txt|meson\.build|"
                        r"meson_options\.txt|meson\.options|configure|setup\.py|setup\.cfg|pyproject\.toml|"
                        r"[^/]*requirements[^/]*\.txt|tox\.ini)$|^(\.github|\.circleci|ci|tools/ci|debian|redhat)/")
# A branch's merge of a backport names the original PR in its head branch: numpy's
# "charris/backport-25050", mergify's "mergify/bp/stable/9.0/pr-12345".
BACKPORT_HEAD = re.compile(r"(?:backport[-_/]|/pr-|\(backport #)(\d+)", re.I)
MEMBERS = 50  # a merged PR's own commits read for evidence and trailers, at most
# Prerequisites and applicability of conflicting pairs are looked for this long (blame is slow on
# long histories); past it a conflict is said without them.
PREREQ_SECONDS = 1.5


@dataclass(frozen=True)
class PullInfo:
    """What the forge knows of a merged pull request beyond git."""

    labels: tuple[str, ...] = ()
    body: str = ""
    issues: tuple[tuple[int, tuple[str, ...]], ...] = ()  # the issues it closes, with their labels


Evidence = Callable[[list[int]], dict[int, PullInfo]]  # PR numbers -> what the forge says of them


@dataclass(frozen=True)
class Classification:
    category: str  # a key of CATEGORIES
    evidence: tuple[str, ...]  # why, in words

    @property
    def security(self) -> bool:
        return self.category == "security"


@dataclass
class Candidate:
    commit: str
    key: str  # "#N" or the SHA
    title: str
    security: bool
    reasons: list[str]  # the evidence
    outlook: dict[str, str] = field(default_factory=dict)  # branch -> clean | conflicts ... | present ... | ...
    category: str = "bug"

    @property
    def suggested(self) -> list[str]:
        """Branches a ✅ backports to: every one that does not have it yet and where it applies."""
        return [b for b, o in self.outlook.items() if not o.startswith(("present", "does not apply"))]

    @property
    def risk(self) -> int:
        """How many branches need more than a clean pick."""
        return sum(0 if o == "clean" or o.startswith("present") else 1 for o in self.outlook.values())

    def line(self) -> str:
        """One digest line: what, what it needs on each branch, and why it is there."""
        tag = "🔒 security: " if self.security else ""
        where = "; ".join(f"does not apply to {b}{o.removeprefix('does not apply')}" if o.startswith("does not apply")
                          else f"{b}: {o}" for b, o in self.outlook.items())
        llm = next((r for r in self.reasons if r.startswith("LLM: ")), "")
        why = ", ".join(r for r in self.reasons if not r.startswith("LLM: "))
        return (f"{tag}{self.key if self.key.startswith('#') else self.key[:10]} {self.title} — {where}"
                f" — {CATEGORIES[self.category]}: {why}" + (f" ({llm})" if llm else ""))

    def as_json(self) -> dict[str, object]:
        return {"commit": self.commit, "key": self.key, "title": self.title, "security": self.security,
                "reasons": self.reasons, "outlook": self.outlook, "suggested": self.suggested,
                "category": self.category}


def _label_category(label: str, fix_labels: Collection[str]) -> str | None:
    low = label.lower()
    if re.search(r"security|vulnerab|cve", low):
        return "security"
    if re.search(r"crash|segfault|data.?loss|corrupt", low):
        return "crash"
    if low in {f.lower() for f in fix_labels} or re.search(r"\bbug|regression|defect", low):
        return "bug"
    if re.search(r"\bdoc", low):
        return "docs"
    if re.search(r"\btest", low):
        return "test-only"
    if re.search(r"\b(build|ci|packaging)\b", low):
        return "build"
    return None


def categorize(subject: str, body: str, paths: Sequence[str], fix_labels: Collection[str],
               pull: PullInfo | None = None, also: Sequence[str] = ()) -> Classification:
    """The category of a change from all the evidence there is: forge labels and the labels of
    the issues it closes, its subject's prefix and words, its commit and PR bodies ("Fixes #N",
    "crash", a described wrong behaviour), and the files it touches. `also`: the subjects of a
    merged PR's own commits."""
    pull = pull or PullInfo()
    ev: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    prefix = None
    rest = subject
    if m := PREFIX.match(subject):
        words = [w.strip().lower() for w in m.group(1).split(",")]
        if known := next((w for w in words if w in TYPES), None):
            prefix = TYPES[known]
            ev[prefix].append(f"prefix {m.group(1)}:")
        rest = subject[m.end():]
    for label in [*message_labels(body), *pull.labels]:
        if cat := _label_category(label, fix_labels):
            ev[cat].append(f"label {label}")
    for number, labels in pull.issues:
        for label in labels:
            if cat := _label_category(label, fix_labels):
                ev[cat].append(f"issue #{number} labelled {label}")
    subjects = [("subject", rest), *(("commit", s) for s in also if s.strip() != subject.strip())]
    for where, text in subjects:
        for cat, rx in (("security", SECURITY), ("crash", CRASH), ("bug", FIX_WORDS), ("build", BUILD_WORDS)):
            if (found := rx.search(text)) and not any(found.group(0).lower() in e for e in ev[cat]):
                ev[cat].append(f"{where} says {found.group(0).lower()!r}")
        if TYPO.search(text) and not CRASH.search(text):
            ev["docs"].append(f"{where} says {TYPO.search(text).group(0).lower()!r}")  # type: ignore[union-attr]
    for where, text in (("commit body", body), ("PR body", pull.body)):
        for cat, rx in (("security", SECURITY), ("crash", CRASH)):
            if (found := rx.search(text)) and not any(found.group(0).lower() in e for e in ev[cat]):
                ev[cat].append(f"{where} says {found.group(0).lower()!r}")
        # "Follow-up for <sha>" continues a change, it does not say the change was wrong
        if found := LINKED.search(text) or next((m for m in prereq.CULPRIT.finditer(text)
                                                 if not m.group(0).lower().startswith("follow")), None):
            ev["bug"].append(f"{where}: {found.group(0).strip()}")
        elif found := WRONG.search(text):
            ev["bug"].append(f"{where} describes a wrong behaviour ({found.group(0).lower()!r})")
    code = [p for p in paths if not is_test(p) and not DOC_PATH.search(p) or BUILD_PATH.search(p)]
    if paths and all(is_test(p) for p in paths):
        return Classification("test-only", ("touches only tests", *ev["test-only"], *ev["crash"], *ev["bug"]))
    if paths and all(DOC_PATH.search(p) and not BUILD_PATH.search(p) for p in paths):
        return Classification("docs", ("touches only docs", *ev["docs"]))
    if paths and not code:  # tests and docs only
        return Classification("test-only", ("touches only tests and docs", *ev["test-only"], *ev["bug"]))
    if ev["security"]:
        return Classification("security", tuple(ev["security"] + ev["crash"] + ev["bug"]))
    said = ("subject", "label", "issue")  # what the PR itself says, or is labelled
    crash_said = [e for e in ev["crash"] if e.startswith(said)]
    if (prefix == "docs" or any(e.startswith("subject") for e in ev["docs"])) and not crash_said:
        return Classification("docs", tuple(ev["docs"]))
    if prefix == "other":  # a feature, refactor or chore: only what the PR says or is labelled overrides it
        if crash_said:
            return Classification("crash", tuple(crash_said))
        if labelled := [e for e in ev["bug"] if e.startswith(("label", "issue"))]:
            return Classification("bug", tuple(labelled))
        return Classification("other", tuple(ev["other"]))
    build_only = bool(paths) and all(BUILD_PATH.search(p) for p in paths)
    if prefix == "build" or build_only and not ev["crash"]:
        # A build or CI change is a fix when it says something was broken (a version bump is not).
        broken = [f"{where} says {m.group(0).lower()!r}" for where, text in subjects if (m := BROKEN.search(text))]
        if broken:
            return Classification("build", tuple(ev["build"] + broken or ["touches only build files"]))
        return Classification("other", tuple(ev["build"] or ["touches only build files"]))
    if ev["crash"]:
        return Classification("crash", tuple(ev["crash"] + ev["bug"]))
    if ev["bug"]:
        return Classification("bug", tuple(ev["bug"]))
    if ev["build"] and any(BROKEN.search(text) for _, text in subjects):
        return Classification("build", tuple(ev["build"]))
    return Classification("other", tuple(ev["other"]))


def classify(subject: str, body: str, fix_labels: Sequence[str]) -> tuple[bool, bool, list[str]]:
    """(is a fix, is security, why) from the message alone: what a prerequisite's commit is."""
    c = categorize(subject, body, (), fix_labels)
    return c.category in FIX_CATEGORIES, c.security, list(c.evidence)


# --- the window ------------------------------------------------------------------------------------


def day_start(day: str, timezone: str = "UTC") -> str:
    """`--since DATE`: 00:00 of that day in the time zone, as git reads a date exactly."""
    try:
        when = datetime.combine(date.fromisoformat(day.strip()), datetime.min.time(), ZoneInfo(timezone))
    except ValueError:
        raise BadInput(f"--since wants a date (YYYY-MM-DD) or a commit, not {day!r}") from None
    return when.strftime("%Y-%m-%d %H:%M:%S %z")


def days_back(days: int, timezone: str = "UTC", now: datetime | None = None) -> str:
    """00:00 in the time zone, `days` days before today there: a first digest's window."""
    today = (now or datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone)).date()
    return day_start((today - timedelta(days=days)).isoformat(), timezone)


@dataclass(frozen=True)
class Window:
    """What a digest looks at: the main branch's first-parent commits after `since` (a commit,
    or an exact instant "YYYY-MM-DD HH:MM:SS +ZZZZ"), up to `head`."""

    since: str
    head: str
    commit: bool  # `since` is a commit

    def spec(self) -> list[str]:
        return [f"{self.since}..{self.head}"] if self.commit else [f"--since-as-filter={self.since}", self.head]

    def describe(self, git: Git, timezone: str = "UTC") -> str:
        head = git.out("log", "-1", "--format=%h %cI", self.head).split()
        end = _local(head[1], timezone)
        if self.commit:
            return f"merged on main after {self.since[:10]} (the previous digest's head) up to {head[0]} ({end})"
        start = datetime.strptime(self.since, "%Y-%m-%d %H:%M:%S %z").astimezone(ZoneInfo(timezone))
        return f"merged on main from {start:%Y-%m-%d %H:%M} {timezone} up to {head[0]} ({end})"


def _local(iso: str, timezone: str) -> str:
    return f"{datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)):%Y-%m-%d %H:%M} {timezone}"


def window(git: Git, main_ref: str, since: str, timezone: str = "UTC") -> Window:
    """The window from `since`: a commit on main (the previous digest's head), a date (from its
    00:00 in the time zone), or an exact instant."""
    head = git.out("rev-parse", f"{main_ref}^{{commit}}")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", since.strip()):
        return Window(day_start(since, timezone), head, False)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}", since.strip()):
        return Window(since.strip(), head, False)
    sha = git.rev(f"{since}^{{commit}}")
    if sha is None:
        raise BadInput(f"--since wants a date (YYYY-MM-DD) or a commit, not {since!r}")
    return Window(sha, head, True)


# --- finding them ----------------------------------------------------------------------------------


def _branch_index(git: Git, branch_ref: str, main_ref: str, since: str | None) -> tuple[set[str], set[str], str]:
    """What a branch already carries: origins named in its commits, PR numbers in its subjects
    (`(#N)`, and a backport merge's head branch: backport-N, mergify's pr-N); its merge base with main."""
    base = git.out("merge-base", branch_ref, main_ref)
    origins: set[str] = set()
    prs: set[str] = set()
    for c in log_commits(git, f"{base}..{branch_ref}", *([f"--since={since}"] if since else [])):
        origins.update(o.lower() for o in ORIGIN.findall(c.body))
        if m := PR_SUFFIX.search(c.subject):
            prs.add(m.group(1))
        prs.update(BACKPORT_HEAD.findall(c.subject))
    return origins, prs, base


def members(git: Git, merge: Commit) -> list[Commit]:
    """A merged PR's own commits (second parent side), newest first, at most MEMBERS."""
    if len(merge.parents) < 2:
        return []
    return log_commits(git, "-n", str(MEMBERS), f"{merge.parents[0]}..{merge.parents[1]}")


def title(c: Commit, own: Sequence[Commit] = ()) -> str:
    """The PR's title: the squash commit's subject, or a merge's first body line (without one,
    its first commit's subject)."""
    if MERGE_PR.match(c.subject):
        if c.body.strip():
            return c.body.strip().splitlines()[0]
        if own:
            return own[-1].subject
    return PR_SUFFIX.sub("", c.subject).strip()


def classify_commits(git: Git, commits: list[Commit], fix_labels: Sequence[str], evidence: Evidence | None = None,
                     ) -> tuple[dict[str, Classification], dict[str, list[str]], dict[str, list[Commit]]]:
    """Every commit's classification, the paths it touches, and a merge's own commits."""
    paths = changed_paths(git, [c.sha for c in commits]) if commits else {}
    own = {c.sha: members(git, c) for c in commits if len(c.parents) > 1}
    pulls = evidence(sorted({c.pr_number for c in commits if c.pr_number})) if evidence and commits else {}
    found = {}
    for c in commits:
        body = "\n".join([c.body, *(m.body for m in own.get(c.sha, []))])
        # a merge's own subject names a head branch ("from someone/fix-x"): no evidence
        subject = title(c, own.get(c.sha, ()))
        subject = "" if MERGE_PR.match(subject) else subject
        found[c.sha] = categorize(subject, body, paths.get(c.sha, []), fix_labels,
                                  pulls.get(c.pr_number) if c.pr_number else None,
                                  [m.subject for m in own.get(c.sha, [])])
    return found, paths, own


def _brought(git: Git, base: str, ref: str, sha: str, paths: list[str]) -> str | None:
    """The branch commit that brought a fix's effect there: the last one adding its most
    distinctive added line (git log -S), when there is one."""
    diff = git.run("diff", "-U0", "--no-color", f"{sha}^", sha, "--", *paths, check=False).stdout
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    best = max(added, key=len, default="")
    if len(best) < 8:
        return None
    found = git.run("log", "-1", "--format=%h %s", "-F", f"-S{best}", f"{base}..{ref}", "--", *paths,
                    check=False).stdout.strip()
    return found or None


def find(git: Git, main_ref: str, branches: dict[str, str], fix_labels: Sequence[str], since: str | None = None,
         dismissed: set[str] | None = None, limit: int | None = None, *, include: Collection[str] = PROPOSED,
         evidence: Evidence | None = None, timezone: str = "UTC") -> list[Candidate]:
    """Fix candidates merged on main in the window (`since`: a commit, a date meaning its 00:00
    in `timezone`, or an exact instant; None: the last 500 commits), in the categories `include`s,
    with their outlook on every release branch (`branches`: the name people use -> its full ref,
    in the order to show them): most severe first, then the easiest."""
    spec = window(git, main_ref, since, timezone).spec() if since else [main_ref]
    # oldest first (-n counts from the newest, before --reverse)
    commits = log_commits(git, "--first-parent", "--reverse", *(["-n", "500"] if not since else []), *spec)
    dismissed = dismissed or set()
    classes, files, own = classify_commits(git, commits, fix_labels, evidence)
    candidates: list[Candidate] = []
    for c in commits:
        cls = classes[c.sha]
        key = f"#{c.pr_number}" if c.pr_number else c.sha
        if cls.category in include and key not in dismissed and c.sha not in dismissed:
            candidates.append(Candidate(c.sha, key, title(c, own.get(c.sha, ())), cls.security, list(cls.evidence),
                                        category=cls.category))
        if limit and len(candidates) >= limit:
            break
    if not candidates:
        return []
    by_sha = {c.sha: c for c in commits}
    oldest = min((by_sha[x.commit] for x in candidates), key=lambda c: int(c.author_date.split()[0]))
    since_date = f"@{oldest.author_date.split()[0]}"
    # Cheap evidence first (ancestor, trailer naming it or one of its PR's commits, its PR number),
    # one pass per branch.
    bases: dict[str, str] = {}
    unmatched: dict[str, list[Candidate]] = {}
    for branch, ref in branches.items():
        origins, prs, bases[branch] = _branch_index(git, ref, main_ref, since_date)
        missing = set(git.out("rev-list", f"{ref}..{main_ref}", f"--since={since_date}").split())
        unmatched[branch] = [c for c in candidates if c.commit in missing
                             and not any(x.startswith(o) for o in origins
                                         for x in (c.commit, *(m.sha for m in own.get(c.commit, []))))
                             and not (c.key.startswith("#") and c.key[1:] in prs)]
        for cand in candidates:
            if cand not in unmatched[branch]:
                cand.outlook[branch] = "present"
    _fixes_what_branches_lack(git, main_ref, branches, unmatched, {
        c.sha: "\n".join([c.body, *(m.body for m in own.get(c.sha, []))]) for c in commits})

    def by_patch() -> dict[str, set[str]]:
        """branch -> candidates found there by equal patch-id (a backport under another name)."""
        waiting = {c.commit for cs in unmatched.values() for c in cs}
        if not waiting:
            return {}
        mine = patch_ids(git, ["--no-walk=unsorted", "--first-parent", "-m", *waiting])
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
        trees = dict(zip(branches.values(), predictor.trees(list(branches.values())), strict=True))
        present = patched.result()
    diffs: dict[str, dict[str, list[tuple[list[str], list[str]]]]] = {}

    def hunks(sha: str) -> dict[str, list[tuple[list[str], list[str]]]]:
        """A candidate's own hunks, read once for all branches."""
        if sha not in diffs:
            diffs[sha] = prereq._diff(git, sha, set(files.get(sha, [])))
        return diffs[sha]

    conflicted = []
    for (cand, branch), pred, pick in zip(owners, predictions, picks, strict=True):
        ref = branches[branch]
        if cand.commit in present.get(branch, set()):
            cand.outlook[branch] = "present"
        elif pred.clean and pred.tree == trees[ref]:  # the pick changes nothing: its effect is there
            brought = _brought(git, bases[branch], ref, cand.commit, files.get(cand.commit, []))
            cand.outlook[branch] = "present: a pick changes nothing" + (f" (came with {brought})" if brought else "")
        elif pred.clean:
            cand.outlook[branch] = "clean"
        elif pick.parent and prereq._effect_present(git, cand.commit, ref, set(files.get(cand.commit, [])),
                                                    hunks(cand.commit)):
            brought = _brought(git, bases[branch], ref, cand.commit, files.get(cand.commit, []))
            cand.outlook[branch] = "present: its added lines are there" + (
                f" (came with {brought})" if brought else "")
        else:
            n = len(pred.conflicts)
            cand.outlook[branch] = f"conflicts in {n} file{'s' if n != 1 else ''} ({', '.join(pred.conflicts[:3])})"
            if pick.parent:
                conflicted.append((cand, branch, pick, pred.conflicts))

    def is_fix(c: Commit) -> bool:
        return classes[c.sha].category in FIX_CATEGORIES if c.sha in classes else \
            classify(c.subject, c.body, fix_labels)[0]

    deadline = time.monotonic() + PREREQ_SECONDS

    def needs(item: tuple[Candidate, str, Pick, tuple[str, ...]]) -> tuple[list[prereq.Prerequisite], list[str]] | None:
        """The prerequisites, and the conflicting test files the branch lacks (left out, as a backport
        does); None past the deadline."""
        cand, branch, pick, paths = item
        assert pick.parent is not None
        if time.monotonic() > deadline:
            return None
        code = [p for p in paths if not is_test(p)]
        gone = [p for p in paths if is_test(p) and not git.ok("cat-file", "-e", f"{pick.onto}:{p}")] if code else []
        asked = [p for p in paths if p not in gone][:3]
        try:
            return prereq.find(git, pick.commit, pick.parent, pick.onto, main_ref, [(p, None) for p in asked],
                               predicted=True, base=bases[branch], is_fix=is_fix, deadline=deadline), gone
        except subprocess.TimeoutExpired:
            return None

    # The most severe first, each on its branches newest first, while the time lasts.
    rank = list(CATEGORIES)
    conflicted.sort(key=lambda item: (rank.index(item[0].category), -list(branches).index(item[1])))
    with ThreadPoolExecutor(max_workers=2) as pool:  # blame is the slow part; git runs outside the GIL
        for (cand, branch, _, _), answer in zip(conflicted, pool.map(needs, conflicted), strict=True):
            if answer is None:
                continue
            found, gone = answer
            if feature := next((p for p in found if p.feature), None):
                cand.outlook[branch] = f"does not apply: the code it changes came with {_name(feature)}"
                continue
            if gone:
                cand.outlook[branch] += f"; {', '.join(gone)} not on {branch} (left out)"
            if named := [p for p in found if p.named]:
                cand.outlook[branch] += "; needs " + ", ".join(_name(p) for p in named) + " first"
    order = {b: i for i, b in enumerate(branches)}
    for cand in candidates:
        cand.outlook = dict(sorted(cand.outlook.items(), key=lambda kv: order[kv[0]]))
    live = [c for c in candidates if c.suggested]
    return sorted(live, key=lambda c: (list(CATEGORIES).index(c.category), c.risk))


def _fixes_what_branches_lack(git: Git, main_ref: str, branches: dict[str, str],
                              unmatched: dict[str, list[Candidate]], bodies: dict[str, str]) -> None:
    """A fix whose message names the commit that brought the bug ("Fixes: <sha>", "Follow-up for
    <sha>") does not apply to a branch that carries none of the commits it names (not as an
    ancestor, nor backported): the bug never reached it. Such pairs leave `unmatched`."""
    named = prereq.culprits(git, {c.commit: bodies.get(c.commit, "") for cs in unmatched.values() for c in cs})
    for branch, cands in unmatched.items():
        asked = [c for c in cands if named.get(c.commit)]
        if not asked:
            continue
        there = branch_index(git, branches[branch], main_ref).presence(
            list({x.sha: x for c in asked for x in named[c.commit]}.values()), own_pr=True)
        for cand in asked:
            if culprit := prereq.never_reached(named[cand.commit], there):
                brought = _named(culprit.sha, culprit.subject, culprit.pr_number)
                cand.outlook[branch] = f"does not apply: what it fixes came with {brought}, which {branch} never got"
                cands.remove(cand)


def _name(p: prereq.Prerequisite) -> str:
    return _named(p.commit, p.subject, p.pr)


def _named(sha: str, subject: str, pr: int | None) -> str:
    return f"#{pr}" if pr else f"{sha[:10]} ({subject[:60]})"


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
