"""The import graph has no cycles (lint-imports checks the floors; this checks what it cannot)."""

from __future__ import annotations

import grimp


def test_no_import_cycles():
    graph = grimp.build_graph("bot", "adapters", exclude_type_checking_imports=True)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module], path[len(path):] = 1, [module]
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(imported):] + [imported]))
            if imported not in state:
                visit(imported)
        state[module] = 2
        path.pop()

    for module in sorted(graph.modules):
        if module not in state:
            visit(module)
