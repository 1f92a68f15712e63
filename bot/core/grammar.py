"""Chat text -> Command: the one grammar (see HELP) for every chat, the console and PR comments."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from bot.engine.git import excerpt

HELP = """\
Usage:
  /backport 1234 to 8.1            backport PR #1234 (also: #1234, a commit SHA, a PR URL)
  /backport 1234 to 8.0 8.1        several branches (also: to 8.0,8.1 · to all)
  /backport 1234 to 8.1 with deps  also pick the prerequisites it names, when each is a fix
  /backport status 1234            which branches have the fix
  /backport why 1234 8.1           why the last attempt ended as it did
  /backport retry 1234 8.1         try again
  /backport cancel 1234 8.1        cancel a queued or waiting backport
  /backport digest                 the candidate digest (✅ backport, ❌ dismiss, 🔁 re-check)
  /backport landed 8.1             fixes requested or labelled for 8.1 that are not on it yet
  /backport batch [8.1]            pending batch items; with a branch: build its batch PR now
  /backport batch drop 1234 8.1    take one item out of 8.1's pending batch
  /backport stats                  success rate, conflicts, time saved
  /backport help                   this text
Approve a waiting backport by reacting to its message: ✅ approve · ❌ reject · 🔁 retry."""


class ParseError(Exception):
    """The text is not a valid command; the message says what is wrong and how to fix it.
    `suggestion`: the valid command the person most likely meant (never run without asking)."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


def _did_you_mean(command: str) -> ParseError:
    return ParseError(f"Did you mean `{command}`?", suggestion=command)


@dataclass(frozen=True)
class Backport:
    ref: str  # "#1234" or a commit SHA
    branches: tuple[str, ...]  # as typed; "all" is expanded by the service
    with_deps: bool = False  # on a conflict, pick the missing prerequisites first (when each is a fix)


@dataclass(frozen=True)
class Status:
    ref: str


@dataclass(frozen=True)
class Why:
    ref: str
    branch: str


@dataclass(frozen=True)
class Retry:
    ref: str
    branch: str


@dataclass(frozen=True)
class Cancel:
    ref: str
    branch: str


@dataclass(frozen=True)
class Digest:
    pass


@dataclass(frozen=True)
class Landed:
    branch: str


@dataclass(frozen=True)
class Batch:
    branch: str | None  # None: list what is pending
    drop: str | None = None  # a ref to take out of the pending batch


@dataclass(frozen=True)
class Stats:
    pass


@dataclass(frozen=True)
class Help:
    pass


Command = Backport | Status | Why | Retry | Cancel | Digest | Landed | Batch | Stats | Help

_PREFIX = re.compile(r"^\s*(?:<@[\w.-]+>|@[\w.-]+)?[\s,:]*(?:/?backport\b)?\s*", re.I)
_PR_URL = re.compile(r"^https?://[^\s/]+/[^\s/]+/[^\s/]+/pulls?/(\d+)/?$")
_FREE_WHY = re.compile(r"^why\s+(?:did|does|is|has)\s+(?:the\s+backport\s+of\s+)?(\S+)\s+(?:fail|failing|failed|stuck|"
                       r"waiting|not\s+\w+)?\s*(?:on|to|for|in)\s+(\S+?)\s*\??$", re.I)


def parse_ref(text: str) -> str:
    """`1234`, `#1234` and PR URLs name a pull request; 7-40 hex digits name a commit."""
    text = text.strip().rstrip(".,;")
    if m := _PR_URL.match(text):
        return f"#{m.group(1)}"
    if m := re.fullmatch(r"#?(\d{1,6})", text):
        return f"#{m.group(1)}"
    if re.fullmatch(r"[0-9a-fA-F]{7,40}", text):
        return text.lower()
    raise ParseError(f"{excerpt(text)!r} is not a pull request (1234, #1234, a PR URL) or a commit SHA "
                     "(7 to 40 hex digits)")


def _two(verb: str, args: list[str]) -> tuple[str, str]:
    if len(args) != 2:
        raise ParseError(f"usage: /backport {verb} <PR or commit> <branch>")
    return parse_ref(args[0]), args[1]


_MISSPELLED = re.compile(r"^\s*/([A-Za-z]+)\b\s*(.*)$", re.S)
_IN_WORDS = re.compile(r"\bbackport\s+(.+?)[\s?.!]*$", re.I | re.S)


def parse(text: str) -> Command:
    """Parse one message. Raises ParseError with a specific message (and, when the person most
    likely meant a valid command, that command as a suggestion)."""
    try:
        return _parse(text)
    except ParseError as error:
        if error.suggestion is None and (meant := _meant(text)):
            raise _did_you_mean(meant) from None
        raise


def _meant(text: str) -> str | None:
    """A backport request written slightly wrong: `/backprot ...`, or in a sentence ("can you
    backport 1182 to 8.0?"). Only suggested: a request in words starts nothing by itself."""
    rest = None
    if (m := _MISSPELLED.match(text)) and m.group(1).lower() != "backport" and difflib.get_close_matches(
            m.group(1).lower(), ["backport"], n=1, cutoff=0.7):
        rest = m.group(2)
    elif m := _IN_WORDS.search(text):
        rest = m.group(1)
    if rest is None:
        return None
    try:
        command = _parse("/backport " + rest)
    except ParseError as error:
        return error.suggestion
    return "/backport " + " ".join(rest.replace(",", " ").split()) if isinstance(command, Backport) else None


def _parse(text: str) -> Command:
    body = _PREFIX.sub("", text, count=1).strip()
    if m := _FREE_WHY.match(body):
        return Why(parse_ref(m.group(1)), m.group(2))
    words = body.replace(",", " ").split()
    if not words:
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb in ("help", "-h", "--help", "?"):
        return Help()
    if verb in ("digest", "stats"):
        if args:
            raise ParseError(f"/backport {verb} takes no arguments")
        return Digest() if verb == "digest" else Stats()
    if verb == "batch":
        if not args:
            return Batch(None)
        if args[0].lower() == "drop":
            if len(args) != 3:
                raise ParseError("usage: /backport batch drop <PR or commit> <branch>")
            return Batch(args[2], parse_ref(args[1]))
        if len(args) != 1:
            raise ParseError("usage: /backport batch [<branch>] · /backport batch drop <PR or commit> <branch>")
        return Batch(args[0])
    if verb == "landed":
        if len(args) != 1:
            raise ParseError("usage: /backport landed <branch>")
        return Landed(args[0])
    if verb == "status":
        if len(args) != 1:
            raise ParseError("usage: /backport status <PR or commit>")
        return Status(parse_ref(args[0]))
    if verb == "why":
        return Why(*_two("why", args))
    if verb == "retry":
        return Retry(*_two("retry", args))
    if verb == "cancel":
        return Cancel(*_two("cancel", args))
    # /backport <ref> to <branch> [<branch> ...]
    if len(words) >= 2 and not {w.lower() for w in words[1:]} & {"to", "onto", "into"}:
        try:
            ref = parse_ref(words[0])
        except ParseError:
            pass
        else:  # `/backport 1182 8.0`: the "to" is missing
            raise _did_you_mean(f"/backport {ref.lstrip('#')} to {' '.join(words[1:])}")
    if len(words) < 3 or words[1].lower() not in ("to", "onto", "into"):
        raise ParseError(f"I did not understand {excerpt(text.strip())!r}. Try: /backport 1234 to 8.1 "
                         "(or /backport help)")
    rest = words[2:]
    with_deps = [w.lower() for w in rest[-2:]] in (["with", "deps"], ["with", "prerequisites"])
    if with_deps:
        rest = rest[:-2]
    elif "with" in (w.lower() for w in rest):
        raise ParseError("did you mean `with deps` at the end: /backport 1234 to 8.1 with deps")
    branches = tuple(dict.fromkeys(w for w in rest if w.lower() != "and"))
    if not branches:
        raise ParseError("name at least one branch: /backport 1234 to 8.1 (or: to all)")
    return Backport(parse_ref(words[0]), branches, with_deps)
