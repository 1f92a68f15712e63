"""What the model is shown beside a conflict hunk or a failed build, gathered by the engine (the
model has no tools): the branch's whole function or block around the region, the same code on the
main branch with the fix, the branch's definitions of the names the fix uses there (and which it
lacks), the prerequisites named for the hunk, and on a repair the failing command's output. All of
it within a token budget per request, saying what was cut."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.engine import prereq, syntax
from bot.engine.conflicts import ConflictedFile, Hunk
from bot.engine.git import Git
from bot.engine.source import Commit

CHARS_PER_TOKEN = 3  # code and JSON-escaped text: SmolLM2 counted 2,300 tokens for 1,500 budgeted at 4
BLOCK_LINES = 160  # a longer enclosing block is cut around the region
AROUND = 30  # lines kept either side of the region when no parser knows the file
NAMES = 8  # definitions looked up per hunk
DEFINITION_LINES = 30
FAILURE_CHARS = 4000
# Blocks worth showing whole: a function, a type, a table.
_BLOCKS = {"function_definition", "struct_specifier", "enum_specifier", "union_specifier", "class_definition",
           "declaration", "preproc_function_def", "type_definition"}
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "else", "case", "do", "defined", "typeof",
             "NULL", "TRUE", "FALSE", "EOF", "not", "and", "or", "in", "is", "None", "True", "False", "print",
             "int", "char", "void", "long", "short", "unsigned", "signed", "const", "static", "struct", "union",
             "enum", "break", "continue", "goto", "bool", "true", "false", "self", "def", "class", "lambda"}
_USE = re.compile(r"(?<![.\w>])([A-Za-z_]\w{2,})\s*\(|\b([A-Z][A-Z0-9_]{3,})\b|\bstruct\s+([A-Za-z_]\w*)")
_WORD = re.compile(r"\b[A-Za-z_]\w{2,}\b")
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')


@dataclass
class Gathered:
    """Named sections, in the order the budget kept them, and what it cut."""

    sections: dict[str, str] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)


def fit(fixed: int, sections: Sequence[tuple[str, str]], tokens: int) -> Gathered:
    """Sections in priority order, each whole, trimmed (head kept) or left out, so that with the
    `fixed` characters the request carries anyway the total stays within `tokens`."""
    room = tokens * CHARS_PER_TOKEN - fixed
    out = Gathered()
    for name, text in sections:
        if not text:
            continue
        if len(text) <= room:
            out.sections[name] = text
            room -= len(text)
        elif room >= 400:
            lines = text.splitlines(keepends=True)
            kept: list[str] = []
            size = 0
            for line in lines:
                if size + len(line) > room - 40:
                    break
                kept.append(line)
                size += len(line)
            out.sections[name] = "".join(kept) + "[... cut for length]\n"
            out.cut.append(f"{name}: {len(kept)} of {len(lines)} lines kept (token budget)")
            room = 0
        else:
            out.cut.append(f"{name}: left out ({len(text) // CHARS_PER_TOKEN} tokens; token budget)")
    return out


def enclosing(path: str, lines: list[str], start: int, end: int) -> str:
    """The smallest function, type or declaration around lines [start, end) (0-based), numbered as
    in the file; a window around them when no parser knows the file or none encloses them. A block
    longer than BLOCK_LINES keeps its first lines and those around the region."""
    first, last = max(0, start - AROUND), min(len(lines), end + AROUND)
    tree = syntax.tree(path, "".join(lines))
    if tree is not None:
        node: Any = tree.root_node
        found = None
        while True:
            inner = next((c for c in node.named_children
                          if c.start_point[0] <= start and c.end_point[0] >= max(start, end - 1)), None)
            if inner is None:
                break
            if inner.type in _BLOCKS:
                found = inner
            node = inner
        if found is not None:
            first, last = found.start_point[0], found.end_point[0] + 1
    numbered = [f"{n + 1}: {lines[n]}" for n in range(first, last)]
    if len(numbered) > BLOCK_LINES:
        head = numbered[:5]
        lo, hi = max(5, start - first - BLOCK_LINES // 3), min(len(numbered), end - first + BLOCK_LINES // 3)
        numbered = head + ["...\n"] + numbered[lo:hi] + (["...\n"] if hi < len(numbered) else [])
    return "".join(x if x.endswith("\n") else x + "\n" for x in numbered)


def used_names(lines: Sequence[str]) -> list[str]:
    """Functions, macros and structs the lines use, first seen first."""
    names: dict[str, None] = {}
    for line in lines:
        code = _STRINGS.sub('""', line)
        if code.lstrip().startswith(("//", "/*", "*", "#")) and not code.lstrip().startswith("#define"):
            continue
        for m in _USE.finditer(code):
            name = next(g for g in m.groups() if g)
            if name not in _KEYWORDS:
                names.setdefault(name)
    return list(names)


def _definition_patterns(name: str) -> list[str]:
    n = re.escape(name)
    return [rf"^\s*#\s*define\s+{n}\b", rf"^(typedef\s+)?(struct|union|enum)\s+{n}\s*\{{?\s*$",
            rf"^}}\s*{n}\s*;", rf"^[A-Za-z_][^;=]*\b{n}\s*\([^;]*$", rf"^\s*(async\s+)?(def|class)\s+{n}\b",
            rf"^{n}\s*="]


def definition(git: Git, tree: str, name: str, prefer: str) -> str | None:
    """Where and how `tree` defines `name` (a few lines), or None. The file `prefer` first, then
    headers."""
    args = ["grep", "-n", "-I", "-E", "--no-color"]
    for p in _definition_patterns(name):
        args += ["-e", p]
    hits = git.run(*args, tree, "--", check=False).stdout.splitlines()
    if not hits:
        return None

    def rank(hit: str) -> tuple[int, int]:
        path = hit.split(":", 2)[1]
        return (0 if path == prefer else 1 if path.endswith(".h") else 2, len(path))

    _, path, line = min(hits, key=rank).split(":", 3)[:3]
    text = git.run("show", f"{tree}:{path}", check=False).stdout.splitlines(keepends=True)
    at = int(line) - 1
    block: list[str] = []
    for n in range(at, min(len(text), at + DEFINITION_LINES)):
        block.append(f"{n + 1}: {text[n]}")
        s = text[n].rstrip()
        if n == at and s.lstrip().startswith("#") and not s.endswith("\\"):
            break
        if s.startswith("}") or (n > at and s.lstrip().startswith("#") and not text[n - 1].rstrip().endswith("\\")):
            break
        if re.search(r"\)\s*$|\{\s*$", s) and "(" in "".join(text[at:n + 1]) and not re.match(
                r"^(typedef\s+)?(struct|union|enum)\b", text[at]):
            break  # a function: its signature is enough
        if n > at and not s and text[at].lstrip().startswith(("def", "class", "async")):
            break
    return f"{path}:\n" + "".join(block)


@dataclass
class Gatherer:
    """Gathers the model's context for one attempt: `git` is the attempt's work tree, mid-pick of
    `commit` (its parent `parent`) onto `target_ref`."""

    git: Git
    commit: str
    parent: str | None
    target_ref: str
    main_ref: str
    tokens: int = 3000  # per request, the hunk itself included
    is_fix: Callable[[Commit], bool] | None = None

    def for_hunk(self, path: str, parsed: ConflictedFile, h: Hunk, fixed: int, diff: str = "") -> Gathered:
        """`fixed`: the characters the request carries anyway (the hunk, the message). The fix's
        `diff` for the file comes first, in at most half of what is left (a sweeping fix's diff
        would leave no room for the code around the hunk)."""
        half = max(0, self.tokens * CHARS_PER_TOKEN - fixed) // 2 // CHARS_PER_TOKEN
        first = Gathered({"fix_diff": diff} if diff else {})
        if len(diff) > half * CHARS_PER_TOKEN:
            first = fit(0, [("fix_diff", diff)], half)
        fixed += len(first.sections.get("fix_diff", ""))
        branch = parsed.render({o.index: list(o.ours) for o in parsed.hunks}).splitlines(keepends=True)
        start = _ours_start(parsed, h)
        branch_function = enclosing(path, branch, start, start + max(len(h.ours), 1))
        fix_file = self.git.run("show", f"{self.commit}:{path}", check=False).stdout.splitlines(keepends=True)
        at = _locate(fix_file, h.theirs or h.before)
        fix_function = enclosing(path, fix_file, at, at + max(len(h.theirs), 1)) if at is not None else ""
        defs, missing = self._definitions(path, h, branch_function, fix_function)
        sections = [("branch_function", branch_function), ("definitions", defs), ("missing", missing),
                    ("fix_function", fix_function), ("prerequisites", self._prerequisites(path, h))]
        rest = fit(fixed, sections, self.tokens)
        return Gathered({**first.sections, **rest.sections}, first.cut + rest.cut)

    def _definitions(self, path: str, h: Hunk, branch_function: str, fix_function: str) -> tuple[str, str]:
        """The branch's definitions of the functions, macros and types the fix's side of the hunk
        uses; and the names it uses that the branch lacks: a function, macro or type with no
        definition on the branch (the main branch has one), or a variable or field the fix's
        function has and the branch's does not."""
        calls = used_names(h.theirs)
        new = [n for n in calls if n not in set(used_names(h.ours))]
        found, missing = [], []
        for name in (new + [n for n in calls if n not in new])[:NAMES]:  # new uses first
            where = definition(self.git, "HEAD", name, path)
            if where is not None:
                found.append(where)
            elif definition(self.git, self.commit, name, path) is not None:
                missing.append(f"{name}: defined on the main branch, no definition on this branch\n")
        known = set(_WORD.findall(branch_function))
        for name in dict.fromkeys(_WORD.findall(_STRINGS.sub('""', "".join(h.theirs)))):
            if name not in known and name not in calls and name not in _KEYWORDS and name in fix_function:
                missing.append(f"{name}: in the fix's function on the main branch, not in the branch's\n")
        return "".join(found), "".join(missing)

    def _prerequisites(self, path: str, h: Hunk) -> str:
        if self.parent is None:
            return ""
        found = prereq.find(self.git, self.commit, self.parent, self.target_ref, self.main_ref, [(path, h)],
                            is_fix=self.is_fix)
        return "".join(f"{p}\n" for p in found if p.named)

    def for_repair(self, regions: Sequence[tuple[str, int, int]], failure: str, fixed: int) -> Gathered:
        """Each (path, start, end) region's enclosing block in the work tree as it is, after the
        failure (the command's output, trimmed to its end)."""
        if len(failure) > FAILURE_CHARS:
            failure = "[... earlier output cut]\n" + failure[-FAILURE_CHARS:]
        sections = [("failure", failure)]
        for i, (path, start, end) in enumerate(regions):
            lines = (self.git.cwd / path).read_text(errors="surrogateescape").splitlines(keepends=True)
            sections.append((f"region_{i}_function", enclosing(path, lines, start, end)))
        return fit(fixed, sections, self.tokens)


def _ours_start(parsed: ConflictedFile, h: Hunk) -> int:
    """The 0-based line where the hunk's branch side starts in the branch's rendering."""
    n = 0
    for part in parsed.parts:
        if part is h or (isinstance(part, Hunk) and part.index == h.index):
            return n
        n += len(part.ours) if isinstance(part, Hunk) else len(part)
    return n


def _locate(lines: list[str], needle: Sequence[str]) -> int | None:
    if not needle:
        return None
    first = needle[0]
    for i, line in enumerate(lines):
        if line == first and tuple(lines[i:i + len(needle)]) == tuple(needle):
            return i
    return None
