"""The most dangerous backport is a clean pick that is wrong for the branch: the fix uses a
function or macro that exists on the main branch but not on the target (the human would have
used the older API). A cheap check catches much of it: names the fix's added code uses that
the fix's parent tree has and the target tree lacks. It only warns (the attempt then needs a
maintainer's approval)."""

from __future__ import annotations

import re

from bot.engine.git import Git

CODE = re.compile(r"\.(c|h|cc|cpp|cxx|hpp|go|rs|py|pyx|pxd|js|ts|java|rb|tcl|lua|swift|kt|m)$")
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{2,}\b")
# What an API change breaks: calls of functions and macros (not methods), and macro constants.
_USE = re.compile(r"(?<![.\w])([A-Za-z_]\w{2,})\s*\(|\b([A-Z][A-Z0-9_]{3,})\b")
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')
_COMMENT = re.compile(r"(//|#(?!\s*(include|define|if|ifdef|ifndef|elif|undef))|/\*|\*/|^\s*\*).*$")
# A name the fix defines itself: def/class/struct/#define NAME, or a C function at column 0.
_DEFINES = re.compile(r"\b(?:def|class|struct|enum|union|typedef|define|fn|func|function)\s+\**([A-Za-z_]\w*)"
                      r"|^[A-Za-z_][\w\s\*]*?\b([A-Za-z_]\w*)\s*\(")


def _code(line: str) -> str:
    return _COMMENT.sub("", _STRINGS.sub('""', line))


def _present(git: Git, tree: str, names: set[str]) -> set[str]:
    """Which of `names` occur as whole words anywhere in `tree` (one pass)."""
    if not names:
        return set()
    args = ["grep", "-o", "-h", "-w", "-F", "-I", "--no-color"]
    for name in sorted(names):
        args += ["-e", name]
    return set(git.run(*args, tree, "--", check=False).stdout.split()) & names


def missing_names(git: Git, commit: str, parent: str, target: str) -> list[str]:
    diff = git.run("diff", "--no-color", "-U0", parent, commit, check=False).stdout
    added: set[str] = set()
    removed: set[str] = set()
    defined: set[str] = set()
    paths: list[str] = []
    code = False
    for line in diff.splitlines():
        if line.startswith("+++ "):
            code = bool(CODE.search(line))
            if code and line.startswith("+++ b/"):
                paths.append(line[6:])
        elif not code or line.startswith("--- "):
            continue
        elif line.startswith("+"):
            added.update(n for m in _USE.finditer(_code(line[1:])) for n in m.groups() if n)
            defined.update(n for m in _DEFINES.finditer(line[1:]) for n in m.groups() if n)
        elif line.startswith("-"):
            removed.update(_NAME.findall(_code(line[1:])))
    candidates = added - removed - defined
    # Most names are in the files the fix touches: one cheap look there first...
    for path in paths:
        if not candidates:
            return []
        candidates -= set(_NAME.findall(git.run("cat-file", "blob", f"{target}:{path}", check=False).stdout))
    # ...then the trees: known on the main side (not a libc or vendor API), unknown on the target.
    on_main = _present(git, parent, candidates)
    return sorted(on_main - _present(git, target, on_main))
