"""The names check: is what a fix's new lines need there on the branch? The most dangerous
backport is a clean pick that is wrong for the branch: it calls a helper, macro, struct field or
enum constant only main has, includes or imports a path the branch lacks (XInclude in XML too), uses a Go or Python
feature newer than the branch declares, or adds a helper the branch already defines elsewhere.
Each finding names what and where; the attempt then needs a maintainer's approval.

Definitions come from tree-sitter parses (definitions.py), never from a word: `git grep -w`
narrows a tree to the files whose lines could define a name, only those are parsed, and a
blob's parse is cached by its id. A name counts as missing only when main's side (the fix's
parent) defines it and the branch defines it nowhere: libc, the standard library and vendored
APIs are defined on neither and never flagged."""

from __future__ import annotations

import functools
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bot.engine import definitions, syntax, toolchain
from bot.engine.definitions import Definition, Facts, Use
from bot.engine.git import Git

CODE = re.compile(r"\.(c|h|cc|cpp|cxx|hpp|go|rs|py|pyx|pxd|js|ts|java|rb|tcl|lua|swift|kt|m)$")
_PATHSPECS = {"c": ["*.c", "*.h", "*.cc", "*.cpp", "*.cxx", "*.hh", "*.hpp", "*.hxx"],
              "go": ["*.go"], "python": ["*.py", "*.pyi"]}
_PATHSPECS["cpp"] = _PATHSPECS["c"]
_HEADERS = ["*.h", "*.hh", "*.hpp", "*.hxx"]
_SOURCES = ["*.c", "*.cc", "*.cpp", "*.cxx"]
SHOWN = 8  # findings said per commit; the rest are counted


def warning(sha: str, found: list[str]) -> str:
    """The approval reason for what the check found in one commit (the engine's and eval's)."""
    more = f"; and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return f"names check of {sha[:10]}: {'; '.join(found[:SHOWN])}{more}"


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str  # "uses `foo()` (src/x.c:12), defined nowhere on 8.1"


def check(git: Git, commit: str, parent: str, target: str, branch: str = "the branch") -> list[Finding]:
    """What `commit`'s new lines (against `parent`) need that `target` lacks."""
    added = _added_lines(git, parent, commit)
    xincludes = _xincludes(git, parent, commit)
    if not added and not xincludes:
        return []
    trees = _Trees(git, parent, target)
    out = [Finding(path, line, f"includes `{href}` ({path}:{line}), absent on {branch}")
           for path, line, href in xincludes
           if (local := posixpath.normpath(posixpath.join(posixpath.dirname(path), href))) in trees.files(parent)
           and local not in trees.files(target)]
    blobs = _blobs(git, [f"{rev}:{p}" for p in added for rev in (commit, parent, target)])
    news = {}
    for path, lines in added.items():
        blob = blobs.get(f"{commit}:{path}")
        new = definitions.read(path, blob[1], lines) if blob else None
        if new is not None:
            news[path] = new
    # What the fix defines itself, in any of its files, comes with it.
    brought = {d.name for path, new in news.items() for d in new.definitions if d.line in added[path]}
    checks = [_Check(trees, path, added[path], new, _facts(path, blobs.get(f"{parent}:{path}")),
                     _facts(path, blobs.get(f"{target}:{path}")), branch, brought) for path, new in news.items()]
    # C's names are global: one search of each tree for every file's (a search reads the whole tree).
    c_uses = [u for c in checks if c.new.lang in ("c", "cpp") for u in c.open_uses]
    if c_uses:
        fields = {u.name for u in c_uses if u.kind == "field"}
        on_branch = trees.defined(trees.target, {u.name for u in c_uses}, "c", None, fields)
        trees.defined(trees.parent, {u.name for u in c_uses if not _satisfies(u, on_branch.get(u.name, []))
                                     and u.name not in trees.mentioned[trees.target]}, "c", None, fields)
    for here in checks:
        out += here.run()
    return sorted(set(out), key=lambda f: (f.path, f.line, f.text))


def missing_names(git: Git, commit: str, parent: str, target: str, branch: str = "the branch") -> list[str]:
    """The findings of `check`, as sentences."""
    return [f.text for f in check(git, commit, parent, target, branch)]


def _added_lines(git: Git, parent: str, commit: str) -> dict[str, set[int]]:
    """Per file a grammar reads, the 1-based lines of the fix's version that the fix adds."""
    diff = git.run("diff", "--no-color", "--no-ext-diff", "-U0", parent, commit, check=False).stdout
    out: dict[str, set[int]] = {}
    path: str | None = None
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") and syntax.language(line[6:]) else None
            if path:
                out[path] = set()
        elif path and line.startswith("@@ "):
            m = re.match(r"@@ -\S+ \+(\d+)(?:,(\d+))? @@", line)
            if m:
                start, count = int(m.group(1)), int(m.group(2) or "1")
                out[path].update(range(start, start + count))
    return {p: lines for p, lines in out.items() if lines}


XINCLUDE = re.compile(r"<xi:include\s[^>]*\bhref=[\"']([^\"'#]+)")


def _xincludes(git: Git, parent: str, commit: str) -> list[tuple[str, int, str]]:
    """The XInclude files (DocBook, as systemd's man pages use them) the fix's new XML lines name:
    (path, line, href)."""
    diff = git.run("diff", "--no-color", "--no-ext-diff", "-U0", parent, commit, "--", "*.xml", check=False).stdout
    out: list[tuple[str, int, str]] = []
    path, line = "", 0
    for text in diff.splitlines():
        if text.startswith("+++ "):
            path = text[6:] if text.startswith("+++ b/") else ""
        elif m := re.match(r"@@ -\S+ \+(\d+)", text):
            line = int(m.group(1))
        elif text.startswith("+") and path:
            out += [(path, line, href) for href in XINCLUDE.findall(text)]
            line += 1
    return out


def _blobs(git: Git, specs: Iterable[str]) -> dict[str, tuple[str, str]]:
    """spec -> (blob id, text) for those that exist, in one `cat-file --batch`."""
    specs = list(dict.fromkeys(specs))
    if not specs:
        return {}
    data = git.raw("cat-file", "--batch", input="".join(s + "\n" for s in specs).encode())
    out: dict[str, tuple[str, str]] = {}
    at = 0
    for spec in specs:
        end = data.index(b"\n", at)
        header = data[at:end].decode().split()
        at = end + 1
        if len(header) != 3 or header[1] != "blob":
            if len(header) == 3:
                at += int(header[2]) + 1
            continue
        size = int(header[2])
        out[spec] = (header[0], data[at:at + size].decode("utf-8", "surrogateescape"))
        at += size + 1
    return out


def _facts(path: str, blob: tuple[str, str] | None) -> Facts | None:
    return None if blob is None else definitions.cached(blob[0], path, blob[1])


_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_COMMENT = re.compile(r"/\*.*?(\*/|$)|//.*$|^\s*\*.*$|^\s*#(?!\s*define).*$")


def _may_define(name: str) -> re.Pattern[str]:
    """Lines (comments taken out) that could define `name` in C, C++, Go or Python: only the
    files with one are parsed. Loose enough for every style of definition the parsers know (a
    miss on one side is a miss on the other: only main-side definitions are ever flagged)."""
    n = re.escape(name)
    return re.compile(
        rf"#\s*define\s+{n}\b"  # a macro
        rf"|\b(struct|union|enum|class|namespace)\s+{n}\s*(\{{|:|$)|\btypedef\b.*\b{n}\b|}}\s*{n}\s*[;,]"
        rf"|^\s*(func\s+(\([^)]*\)\s*)?|type\s+|var\s+|const\s+|(async\s+)?def\s+|class\s+){n}\b"  # Go, Python
        rf"|^(?!\s*(return|else|case|goto|if|while|for|switch|do|sizeof)\b)\s*[A-Za-z_][\w\s*&:<>,]*[\s*&]{n}\s*\("
        rf"|^{n}\s*\("  # a function (its type on the line before)
        rf"|^\s*{n}\s*(=[^=]|,|;|:|\[|$|\s+[\w*\[(])"  # enum constants, Go fields and const blocks
        rf"|\b(?!return\b|case\b|goto\b|else\b|sizeof\b)[A-Za-z_]\w*[\s*]+{n}\s*(\[[^\]]*\]\s*)*(:\s*\w+\s*)?[;,=)]")


class _Trees:
    """The two trees a check reads (main's side and the branch), with what it learns of them."""

    def __init__(self, git: Git, parent: str, target: str) -> None:
        self.git = git
        self.parent, self.target = git.out("rev-parse", f"{parent}^{{tree}}", f"{target}^{{tree}}").split()
        self._memo: dict[tuple[str, str, str | None, str, bool], list[tuple[str, Definition]]] = {}
        # Names a tree's code (not its comments or strings) mentions: outside APIs, names a macro
        # makes, or defined in a way the parsers miss; the branch has them either way.
        self.mentioned: dict[str, set[str]] = defaultdict(set)

    def files(self, tree: str) -> frozenset[str]:
        return _ls_tree(self.git, tree)

    def read(self, tree: str, path: str) -> Facts | None:
        return _facts(path, _blobs(self.git, [f"{tree}:{path}"]).get(f"{tree}:{path}"))

    def defined(self, tree: str, names: set[str], lang: str, directory: str | None = None,
                fields: frozenset[str] | set[str] = frozenset()) -> dict[str, list[tuple[str, Definition]]]:
        """Where `tree` defines each of `names` (in `directory` only, for Go's packages): the first
        definition of the kind asked for (a field or method for `fields`, else another kind), and
        whatever else was found on the way. C looks in headers first, then in sources; answers
        are remembered (one check asks the same tree about many files' names)."""
        family = "c" if lang in ("c", "cpp") else lang
        out: dict[str, list[tuple[str, Definition]]] = {}
        todo: set[str] = set()
        for name in names:
            known = self._memo.get((tree, family, directory, name, name in fields))
            if known is None:
                todo.add(name)
            elif known:
                out[name] = known
        asked = set(todo)
        stages = [_HEADERS, _SOURCES] if family == "c" and directory is None else [_PATHSPECS[family]]
        for specs in stages:
            if not todo:
                break
            if directory is not None:
                specs = [f":(glob){directory + '/' if directory else ''}{s}" for s in specs]
            found = self._search(tree, todo, specs, fields)
            for name, where in found.items():
                out.setdefault(name, []).extend(where)
            todo = {n for n in todo if n not in self.mentioned[tree] and not any(
                (d.kind in ("field", "method")) == (n in fields) for _, d in found.get(n, []))}
        for name in asked:
            self._memo[(tree, family, directory, name, name in fields)] = out.get(name, [])
        return out

    def _search(self, tree: str, names: set[str], specs: list[str], fields: frozenset[str] | set[str]
                ) -> dict[str, list[tuple[str, Definition]]]:
        args = ["grep", "-n", "-w", "-F", "-I", "--null", "--no-color"]
        for name in sorted(names):
            args += ["-e", name]
        hits = self.git.run(*args, tree, "--", *specs, check=False).stdout
        patterns = {n: _may_define(n) for n in names}
        words = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b")
        candidates: dict[str, set[str]] = defaultdict(set)  # path -> names it may define
        for hit in hits.splitlines():
            parts = hit.split("\0", 2)
            if len(parts) != 3:
                continue
            path, code = parts[0].split(":", 1)[1], _COMMENT.sub("", parts[2])
            used = set(words.findall(_STRING.sub('""', code)))
            self.mentioned[tree] |= used
            for name in used:
                if patterns[name].search(code):
                    candidates[path].add(name)
        # Short paths first; a name is looked for until a definition of the kind asked for is
        # found (a used name is mostly defined, and once is enough).
        order = sorted(candidates, key=lambda p: (len(p), p))
        blobs = _blobs(self.git, [f"{tree}:{p}" for p in order])
        found: dict[str, list[tuple[str, Definition]]] = defaultdict(list)
        pending = set(names)
        for path in order:
            maybe = candidates[path] & pending
            if not maybe:
                continue
            facts = _facts(path, blobs.get(f"{tree}:{path}"))
            for d in facts.definitions if facts else ():
                if d.name in maybe:
                    found[d.name].append((path, d))
                    if (d.kind in ("field", "method")) == (d.name in fields):
                        pending.discard(d.name)
            if not pending:
                break
        return found

    @functools.cached_property
    def go_modules(self) -> dict[str, dict[str, str]]:
        """tree -> module path -> its directory, from every go.mod."""
        out: dict[str, dict[str, str]] = {}
        for tree in (self.parent, self.target):
            mods = sorted(p for p in self.files(tree) if p == "go.mod" or p.endswith("/go.mod"))
            blobs = _blobs(self.git, [f"{tree}:{p}" for p in mods])
            out[tree] = {}
            for p in mods:
                m = re.search(r"^module\s+(\S+)", blobs.get(f"{tree}:{p}", ("", ""))[1], re.M)
                if m:
                    out[tree][m.group(1).strip('"')] = posixpath.dirname(p)
        return out

    def go_dir(self, tree: str, import_path: str) -> str | None:
        """The directory of the tree an import path names (under a go.mod's module path)."""
        best = max((m for m in self.go_modules[tree] if import_path == m or import_path.startswith(m + "/")),
                   key=len, default=None)
        if best is None:
            return None
        return posixpath.join(self.go_modules[tree][best], import_path[len(best):].lstrip("/")).strip("/")

    def has_go_dir(self, tree: str, directory: str) -> bool:
        prefix = directory + "/" if directory else ""
        return any(p.startswith(prefix) and p.endswith(".go") and "/" not in p[len(prefix):] for p in self.files(tree))

    def declared_version(self, tree: str, path: str, names: tuple[str, ...]) -> tuple[str, toolchain.Version] | None:
        """The nearest of `names` (go.mod, pyproject.toml, ...) at or above `path`'s directory and
        the version it declares."""
        files = self.files(tree)
        directory = posixpath.dirname(path)
        while True:
            for name in names:
                candidate = posixpath.join(directory, name)
                if candidate in files:
                    text = _blobs(self.git, [f"{tree}:{candidate}"]).get(f"{tree}:{candidate}", ("", ""))[1]
                    version = (toolchain.go_version(text) if name == "go.mod" else toolchain.python_version(text))
                    if version is not None:
                        return candidate, version
            if not directory:
                return None
            directory = posixpath.dirname(directory)


@functools.lru_cache(maxsize=32)
def _ls_tree_cached(cwd: str, tree: str) -> frozenset[str]:
    return frozenset(Git(Path(cwd)).raw("ls-tree", "-r", "-z", "--name-only", tree)
                     .decode("utf-8", "surrogateescape").split("\0")) - {""}


def _ls_tree(git: Git, tree: str) -> frozenset[str]:
    return _ls_tree_cached(str(git.cwd), tree)


class _Check:
    """One file of the fix."""

    def __init__(self, trees: _Trees, path: str, lines: set[int], new: Facts, before: Facts | None,
                 branch_file: Facts | None, branch: str, brought: set[str]) -> None:
        self.trees, self.path, self.lines, self.new = trees, path, lines, new
        self.before, self.branch_file, self.branch = before, branch_file, branch
        self.found: list[Finding] = []
        self.uses = [u for u in new.uses if u.line in lines]
        known = branch_file.words if branch_file else set()
        # Names the branch's own file already uses in code are there; so are the fix's own.
        self.open_uses = [u for u in self.uses if u.name not in brought
                          and (u.kind == "qualified" or u.name not in known)]

    def say(self, line: int, text: str) -> None:
        self.found.append(Finding(self.path, line, text))

    def run(self) -> list[Finding]:
        uses, open_uses = self.uses, self.open_uses
        lang = self.new.lang
        if lang in ("c", "cpp"):
            self.names(open_uses, lang, None)
            self.includes()
        elif lang == "go":
            self.go(open_uses, uses)
        elif lang == "python":
            self.python(open_uses)
        self.duplicates()
        return self.found

    # --- names defined nowhere on the branch -------------------------------------------------------

    def names(self, uses: list[Use], lang: str, directory: str | None, label: str = "") -> None:
        """Flag the uses main's side defines (in `directory`, or the whole tree) and the branch does not."""
        wanted = {u.name for u in uses}
        fields = {u.name for u in uses if u.kind == "field"}
        t = self.trees
        on_branch = t.defined(t.target, wanted, lang, directory, fields)
        absent = {u.name for u in uses if not _satisfies(u, on_branch.get(u.name, []))
                  and u.name not in t.mentioned[t.target]}
        on_main = t.defined(t.parent, absent, lang, directory, fields)
        said: set[str] = set()
        for u in uses:
            if u.name in absent and u.name not in said and _satisfies(u, on_main.get(u.name, [])):
                said.add(u.name)
                where = on_main[u.name][0][0]
                self.say(u.line, f"uses `{label}{u.shown()}` ({self.path}:{u.line}), defined nowhere on "
                                 f"{self.branch} (main defines it in {where})")

    def includes(self) -> None:
        t = self.trees
        for imp in self.new.imports:
            if imp.line not in self.lines:
                continue
            wanted = re.sub(r"^(\.\./|\./)+", "", imp.path)
            local = posixpath.normpath(posixpath.join(posixpath.dirname(self.path), imp.path))

            def found(tree: str, wanted: str = wanted, local: str = local) -> bool:
                return local in t.files(tree) or any(p == wanted or p.endswith("/" + wanted) for p in t.files(tree))
            if not found(t.target) and found(t.parent):
                self.say(imp.line, f"includes `{imp.path}` ({self.path}:{imp.line}), absent on {self.branch}")

    # --- Go ----------------------------------------------------------------------------------------

    def go(self, open_uses: list[Use], uses: list[Use]) -> None:
        t = self.trees
        directory = posixpath.dirname(self.path)
        aliases = {i.alias: i.path for i in self.new.imports}
        missing_dirs: set[str] = set()
        for imp in self.new.imports:
            if imp.line not in self.lines:
                continue
            on_main = t.go_dir(t.parent, imp.path)
            if on_main is None or not t.has_go_dir(t.parent, on_main):
                continue  # not this repository's package
            on_branch = t.go_dir(t.target, imp.path)
            if on_branch is None or not t.has_go_dir(t.target, on_branch):
                missing_dirs.add(imp.path)
                self.say(imp.line, f"imports `{imp.path}` ({self.path}:{imp.line}), absent on {self.branch}")
        local = [u for u in open_uses if u.kind in ("call", "name", "type")]
        self.names(local, "go", directory)
        self.names([u for u in open_uses if u.kind == "field"], "go", None)
        by_package: dict[str, list[Use]] = defaultdict(list)
        for u in uses:
            if u.kind == "qualified" and aliases.get(u.qualifier) not in missing_dirs:
                by_package[aliases.get(u.qualifier, "")].append(u)
        for import_path, package_uses in by_package.items():
            on_main = t.go_dir(t.parent, import_path)
            on_branch = t.go_dir(t.target, import_path)
            if on_main is not None and on_branch is not None and t.has_go_dir(t.target, on_branch):
                # the same package on both sides (their directories may differ)
                found = t.defined(t.target, {u.name for u in package_uses}, "go", on_branch)
                absent = [u for u in package_uses if u.name not in found]
                self.names(absent, "go", on_main)
        self.go_toolchain(uses)

    def go_toolchain(self, uses: list[Use]) -> None:
        declared = self.trees.declared_version(self.trees.target, self.path, ("go.mod",))
        if declared is None:
            return
        go_mod, version = declared
        aliases = {i.alias: i.path for i in self.new.imports}
        newer: list[tuple[int, str, toolchain.Version]] = []
        for imp in self.new.imports:
            if imp.line in self.lines and imp.path in toolchain.GO_PACKAGES:
                newer.append((imp.line, f"package `{imp.path}`", toolchain.GO_PACKAGES[imp.path]))
        for u in uses:
            api = f"{aliases.get(u.qualifier, '')}.{u.name}"
            if u.kind == "qualified" and api in toolchain.GO_APIS:
                newer.append((u.line, f"API `{u.qualifier}.{u.name}()`", toolchain.GO_APIS[api]))
            elif u.kind == "builtin" and u.name in toolchain.GO_BUILTINS:
                newer.append((u.line, f"builtin `{u.name}()`", toolchain.GO_BUILTINS[u.name]))
            elif u.kind == "testing" and u.name in toolchain.GO_TESTING_METHODS:
                newer.append((u.line, f"API `{u.qualifier}.{u.name}()`", toolchain.GO_TESTING_METHODS[u.name]))
        for feature, line in self.new.features:
            if line in self.lines and feature in toolchain.GO_SYNTAX:
                what, since = toolchain.GO_SYNTAX[feature]
                newer.append((line, what, since))
        for line, what, since in newer:
            if since > version:
                self.say(line, f"uses Go {toolchain.shown(since)} {what} ({self.path}:{line}), the branch declares "
                               f"go {toolchain.shown(version)} ({go_mod})")

    # --- Python ------------------------------------------------------------------------------------

    def python(self, open_uses: list[Use]) -> None:
        t = self.trees
        branch_top = {d.name for d in self.branch_file.definitions if d.top} if self.branch_file else set()
        main_top = {d.name for d in self.before.definitions if d.top} if self.before else set()
        if "*" not in branch_top:
            said: set[str] = set()
            for u in open_uses:
                if u.kind in ("call", "name") and u.name in main_top and u.name not in branch_top \
                        and u.name not in said:
                    said.add(u.name)
                    self.say(u.line, f"uses `{u.shown()}` ({self.path}:{u.line}), defined nowhere on {self.branch} "
                                     f"(main defines it in {self.path})")
        self.python_keywords()
        modules = {b: m for i in self.new.imports for b, m in i.modules().items()}
        for imp in self.new.imports:
            if imp.line not in self.lines:
                continue
            on_main, on_branch = self.py_module(t.parent, imp.path), self.py_module(t.target, imp.path)
            if on_main and not on_branch:
                self.say(imp.line, f"imports `{imp.path}` ({self.path}:{imp.line}), absent on {self.branch}")
            elif on_main and on_branch:
                for name in imp.names:
                    if not self.py_defines(t.target, imp.path, on_branch, name) \
                            and self.py_defines(t.parent, imp.path, on_main, name):
                        self.say(imp.line, f"imports `{name}` from `{imp.path}` ({self.path}:{imp.line}), defined "
                                           f"nowhere on {self.branch}")
        for u in open_uses:
            module = modules.get(u.qualifier)
            if u.kind != "qualified" or module is None:
                continue
            on_main, on_branch = self.py_module(t.parent, module), self.py_module(t.target, module)
            if on_main and on_branch and not self.py_defines(t.target, module, on_branch, u.name) \
                    and self.py_defines(t.parent, module, on_main, u.name):
                self.say(u.line, f"uses `{u.shown()}` ({self.path}:{u.line}), defined nowhere on {self.branch} "
                                 f"(main defines it in {on_main})")
        self.python_toolchain()

    def python_keywords(self) -> None:
        """A call that passes a keyword the branch's function (in the same file) does not take, when
        main's does: the fix relies on a parameter added after the branch was cut."""
        if self.branch_file is None or self.before is None:
            return
        for function, keyword, line in self.new.keywords:
            theirs, ours = self.before.params.get(function), self.branch_file.params.get(function)
            if line in self.lines and theirs and ours and keyword in theirs[0] and keyword not in ours[0] \
                    and not ours[1]:
                self.say(line, f"calls `{function}({keyword}=...)` ({self.path}:{line}), but `{function}` on "
                               f"{self.branch} takes no `{keyword}`")

    def py_module(self, tree: str, module: str) -> str | None:
        """The file of the repository a module name resolves to in `tree`, or None."""
        if module.startswith("."):
            dots = len(module) - len(module.lstrip("."))
            base = posixpath.dirname(self.path)
            for _ in range(dots - 1):
                base = posixpath.dirname(base)
            rel = module.lstrip(".").replace(".", "/")
            candidates = [posixpath.join(base, rel) + ".py", posixpath.join(base, rel, "__init__.py")]
            return next((c for c in candidates if c in self.trees.files(tree)), None)
        rel = module.replace(".", "/")
        ends = ("/" + rel + ".py", "/" + rel + "/__init__.py")
        return next((p for p in sorted(self.trees.files(tree), key=len)
                     if p in (rel + ".py", rel + "/__init__.py") or p.endswith(ends)), None)

    def py_defines(self, tree: str, module: str, file: str, name: str) -> bool:
        facts = self.trees.read(tree, file)
        if facts is None or any(d.name in (name, "*") for d in facts.definitions if d.top):
            return True
        package = posixpath.dirname(file) if file.endswith("__init__.py") else None
        return package is not None and (f"{package}/{name}.py" in self.trees.files(tree)
                                        or f"{package}/{name}/__init__.py" in self.trees.files(tree))

    def python_toolchain(self) -> None:
        declared = self.trees.declared_version(self.trees.target, self.path,
                                               ("pyproject.toml", "setup.cfg", "setup.py"))
        if declared is None:
            return
        where, version = declared
        newer: list[tuple[int, str, toolchain.Version]] = []
        for feature, line in self.new.features:
            if line in self.lines and feature in toolchain.PY_SYNTAX:
                what, since = toolchain.PY_SYNTAX[feature]
                newer.append((line, what, since))
        modules = {b: m for i in self.new.imports for b, m in i.modules().items()}
        for imp in self.new.imports:
            if imp.line not in self.lines:
                continue
            if imp.path in toolchain.PY_MODULES:
                newer.append((imp.line, f"module `{imp.path}`", toolchain.PY_MODULES[imp.path]))
            for name in imp.names:
                if f"{imp.path}.{name}" in toolchain.PY_APIS:
                    newer.append((imp.line, f"`{imp.path}.{name}`", toolchain.PY_APIS[f"{imp.path}.{name}"]))
        for u in self.new.uses:
            api = f"{modules.get(u.qualifier, '')}.{u.name}"
            if u.line in self.lines and u.kind == "qualified" and api in toolchain.PY_APIS:
                newer.append((u.line, f"`{api}`", toolchain.PY_APIS[api]))
        for line, what, since in newer:
            if since > version:
                self.say(line, f"uses Python {toolchain.shown(since)} {what} ({self.path}:{line}), the branch "
                               f"declares Python >= {toolchain.shown(version)} ({where})")

    # --- definitions the branch already has --------------------------------------------------------

    def duplicates(self) -> None:
        t = self.trees
        had = {d.name for d in self.before.definitions} if self.before else set()
        added = [d for d in self.new.definitions if d.line in self.lines and d.name not in had
                 and (d.top or d.kind == "method") and d.name not in _EVERY_PROGRAM_HAS]
        if not added:
            return
        lang = self.new.lang
        if lang == "go":
            directory = posixpath.dirname(self.path)
            found = t.defined(t.target, {d.name for d in added}, "go", directory)
            for d in added:
                for where, other in found.get(d.name, []):
                    same_package = (t.read(t.target, where) or Facts("go")).package == self.new.package
                    if same_package and other.kind == d.kind and other.scope == d.scope and other.top == d.top:
                        self.say(d.line, f"adds `{_shown(d)}` in {self.path}:{d.line}, already defined on "
                                         f"{self.branch} in {where}:{other.line}")
                        break
        elif lang in ("c", "cpp"):
            wanted = [d for d in added if d.kind == "macro" or d.kind == "function" and d.exported]
            found = t.defined(t.target, {d.name for d in wanted}, lang)
            included = {posixpath.basename(i.path) for i in (self.branch_file.imports if self.branch_file else [])}
            for d in wanted:
                for where, other in found.get(d.name, []):
                    clash = (other.kind == "function" and other.exported if d.kind == "function"
                             else other.kind == "macro" and (where == self.path
                                                             or posixpath.basename(where) in included))
                    if clash:
                        self.say(d.line, f"adds `{_shown(d)}` in {self.path}:{d.line}, already defined on "
                                         f"{self.branch} in {where}:{other.line}")
                        break
        elif lang == "python" and self.branch_file is not None:
            for d in added:
                same = next((o for o in self.branch_file.definitions if o.name == d.name and o.top
                             and o.kind in ("function", "type")), None)
                if same is not None and d.kind in ("function", "type"):
                    self.say(d.line, f"adds `{_shown(d)}` in {self.path}:{d.line}, already defined on {self.branch} "
                                     f"in {self.path}:{same.line}")


# Defined once per program (C's main) or as often as wanted (Go's init): never a duplicate.
_EVERY_PROGRAM_HAS = frozenset({"main", "init"})


def _shown(d: Definition) -> str:
    name = f"{d.scope}.{d.name}" if d.scope and d.kind == "method" else d.name
    return f"{name}()" if d.kind in ("function", "method") else name


def _satisfies(use: Use, found: list[tuple[str, Definition]]) -> bool:
    """Whether one of the definitions found can be what `use` means (a field for a field...)."""
    if use.kind == "field":
        return any(d.kind in ("field", "method") for _, d in found)
    return any(d.kind not in ("field", "method") for _, d in found)
