"""Does a file still parse? tree-sitter grammars for C and Python, when installed. Files with
errors before (macros can confuse a parser) are compared by their count of error nodes."""

from __future__ import annotations

import functools
import re
from typing import Any

_LANGUAGES = {r"\.(c|h)$": "tree_sitter_c", r"\.(py|pyi)$": "tree_sitter_python"}


@functools.cache
def _parser(module: str) -> Any | None:
    try:
        import importlib

        from tree_sitter import Language, Parser

        return Parser(Language(importlib.import_module(module).language()))
    except (ImportError, AttributeError, ValueError):
        return None


def tree(path: str, text: str) -> Any | None:
    """The tree-sitter tree of `text`; None when no parser knows this file."""
    module = next((m for pattern, m in _LANGUAGES.items() if re.search(pattern, path)), None)
    parser = _parser(module) if module else None
    return None if parser is None else parser.parse(text.encode())


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
