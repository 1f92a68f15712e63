"""Does a file still parse, and what encloses a line? tree-sitter grammars for C, C++, Go and
Python (per-language wheels, which work offline). Files with errors before (macros can confuse a
parser) are compared by their count of error nodes."""

from __future__ import annotations

import functools
import re
from typing import Any

# Headers (.h) are read as C: C++ headers mostly parse as C, and C code does not parse as C++.
_LANGUAGES = {r"\.(c|h)$": "c", r"\.(cc|cpp|cxx|c\+\+|hh|hpp|hxx|h\+\+)$": "cpp", r"\.go$": "go",
              r"\.(py|pyi)$": "python"}


def language(path: str) -> str | None:
    """c, cpp, go or python: the grammar that reads `path`, None when none does."""
    return next((lang for pattern, lang in _LANGUAGES.items() if re.search(pattern, path)), None)


@functools.cache
def _parser(lang: str) -> Any | None:
    try:
        import importlib

        from tree_sitter import Language, Parser

        return Parser(Language(importlib.import_module(f"tree_sitter_{lang}").language()))
    except (ImportError, AttributeError, ValueError):
        return None


def tree(path: str, text: str) -> Any | None:
    """The tree-sitter tree of `text`; None when no parser knows this file."""
    lang = language(path)
    parser = _parser(lang) if lang else None
    return None if parser is None else parser.parse(text.encode("utf-8", "surrogateescape"))


def errors(path: str, text: str) -> int | None:
    """Error and missing nodes in the parse of `text`; None when no parser knows this file."""
    parsed = tree(path, text)
    if parsed is None:
        return None
    count, stack = 0, [parsed.root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            count += 1
        stack.extend(node.children)
    return count


# The bodies that say what a line is inside, per grammar: node type -> kind. A function's body
# is "function" however deep the blocks nest in it; a struct, union or class body is "type".
_BODIES = {
    "c": {"compound_statement": "function", "field_declaration_list": "type", "enumerator_list": "enum",
          "initializer_list": "initializer"},
    "go": {"block": "function", "field_declaration_list": "type", "interface_type": "type",
           "literal_value": "initializer"},
    "python": {"function_definition": "function", "class_definition": "type"},
}
_BODIES["cpp"] = {**_BODIES["c"], "declaration_list": "top"}  # a namespace's body is still the top level


def enclosing_kinds(path: str, text: str, lines: list[int]) -> list[str | None]:
    """For each 1-based line of `text`, the kind of the innermost construct around its first
    non-blank character: "function", "type" (struct, union, class, interface body), "enum",
    "initializer" (a brace initializer or composite literal) or "top"; all None when no parser
    knows the file. A placed line should keep the kind it had on main (a field stays in a struct,
    a statement in a function)."""
    lang = language(path)
    parsed = tree(path, text)
    if parsed is None or lang is None:
        return [None] * len(lines)
    bodies = _BODIES[lang]
    source = text.splitlines()
    out: list[str | None] = []
    for number in lines:
        row = number - 1
        line = source[row] if 0 <= row < len(source) else ""
        point = (row, len(line) - len(line.lstrip()))
        kind, node = "top", parsed.root_node
        while True:
            inner = next((c for c in node.children if c.start_point <= point < c.end_point), None)
            if inner is None:
                break
            if inner.type in bodies and not (lang == "python" and point[0] == inner.start_point[0]):
                # Python's def/class line itself is outside the body it opens.
                if not (kind == "function" and bodies[inner.type] == "function"):
                    kind = bodies[inner.type]
            node = inner
        out.append(kind)
    return out
