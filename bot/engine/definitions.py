"""What a source file defines and what it uses, read from its tree-sitter parse (C, C++, Go,
Python): a name in a comment or a string is neither. The names check (symbols.py) compares what
a fix's new lines use with what the branch's files define.

Uses leave out what cannot be missing on a branch: a function's own locals and parameters, the
languages' builtins, Python attributes of objects (too dynamic to judge), and preprocessor
conditions (`#ifdef X` is meant to work without X)."""

from __future__ import annotations

import builtins
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

from bot.engine import syntax

# Kinds of use: "call" foo(), "name" (a constant, macro, enum constant or global), "type",
# "field" (a struct or union member, a Go field or method), "qualified" (pkg.Name, module.attr).


@dataclass(frozen=True)
class Use:
    kind: str
    name: str
    line: int  # 1-based
    qualifier: str = ""  # the package or module alias of a qualified use
    called: bool = False  # a qualified use that is called: pkg.Func()

    def shown(self) -> str:
        if self.kind == "qualified":
            return f"{self.qualifier}.{self.name}" + ("()" if self.called else "")
        return {"call": f"{self.name}()", "field": f".{self.name}"}.get(self.kind, self.name)


@dataclass(frozen=True)
class Definition:
    name: str
    kind: str  # function, declaration, macro, type, constant, variable, field, method
    line: int
    exported: bool = True  # C: not static; Go methods: the receiver's type is in `scope`
    top: bool = True  # at file (module, package) level
    scope: str = ""  # Go: a method's receiver type


@dataclass(frozen=True)
class Import:
    path: str  # "foo/bar.h", "example.com/m/pkg", "a.b" (Python: dots, leading dots for relative)
    line: int
    alias: str = ""  # the name the file refers to it by (Go, Python)
    names: tuple[str, ...] = ()  # Python: from a.b import these
    bound: tuple[str, ...] = ()  # ... under these names (`as`)

    def modules(self) -> dict[str, str]:
        """Python: the names this import binds -> the dotted path each may be a module of."""
        if self.names:
            return {b: f"{self.path.rstrip('.')}.{n}" if self.path.strip(".") else f"{self.path}{n}"
                    for n, b in zip(self.names, self.bound, strict=True)}
        return {self.alias: self.path if self.alias != self.path.split(".")[0] else self.alias}


@dataclass
class Facts:
    lang: str
    uses: list[Use] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    words: set[str] = field(default_factory=set)  # every identifier in code (not comments or strings)
    package: str = ""  # Go: the package clause
    features: list[tuple[str, int]] = field(default_factory=list)  # syntax a toolchain table may date
    # Python: each top-level function's parameter names and whether it takes **kwargs; and the
    # keyword arguments of calls to plain names on the lines asked for: (function, keyword, line)
    params: dict[str, tuple[frozenset[str], bool]] = field(default_factory=dict)
    keywords: list[tuple[str, str, int]] = field(default_factory=list)

    def defined(self, name: str) -> list[Definition]:
        return [d for d in self.definitions if d.name == name]


_GO_PREDECLARED = set("""bool byte complex64 complex128 error float32 float64 int int8 int16 int32 int64 rune string
    uint uint8 uint16 uint32 uint64 uintptr any comparable true false iota nil append cap clear close complex copy
    delete imag len make max min new panic print println real recover _""".split())
_PY_BUILTINS = set(dir(builtins)) | {"self", "cls", "__file__", "__name__", "__doc__", "__all__", "__spec__"}
# Words tree-sitter may read as identifiers when a macro hides the syntax around them.
_C_WORDS = set("""auto bool break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
    volatile while true false NULL nullptr this class new delete typename template public private protected virtual
    operator using namespace size_t ssize_t int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t
    uintptr_t intptr_t""".split())


def read(path: str, text: str, lines: set[int] | frozenset[int] = frozenset()) -> Facts | None:
    """The facts of one file, its uses only on `lines` (1-based); None when no grammar reads it."""
    lang = syntax.language(path)
    parsed = syntax.tree(path, text)
    if parsed is None or lang is None:
        return None
    facts = Facts(lang)
    # Without uses to read, C needs no parents: its definitions are read outside function bodies.
    _local.parents = _parents(parsed.root_node) if lines or lang not in ("c", "cpp") else {}
    _local.lines = lines
    try:
        {"c": _read_c, "cpp": _read_c, "go": _read_go, "python": _read_python}[lang](parsed.root_node, facts)
    finally:
        _local.parents, _local.lines = {}, frozenset()
    return facts


def _wanted(node: Any) -> bool:
    """Whether uses are asked for on this node's line."""
    return _line(node) in _local.lines


_cache: OrderedDict[tuple[str, str], Facts | None] = OrderedDict()
_cache_lock = Lock()
CACHE_SIZE = 8192


def cached(blob: str, path: str, text: str) -> Facts | None:
    """`read` without uses, remembered by blob id (a blob's facts never change; branches share
    most blobs)."""
    key = (blob, syntax.language(path) or "")
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    facts = read(path, text)
    with _cache_lock:
        _cache[key] = facts
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return facts


def _called(node: Any) -> bool:
    return _up(node) is not None and _up(node).type in ("call_expression", "call") \
        and _up(node).child_by_field_name("function") == node


def _text(node: Any) -> str:
    return str(node.text.decode("utf-8", "replace"))


def _line(node: Any) -> int:
    return int(node.start_point[0]) + 1


def _walk(node: Any) -> Any:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


_local = threading.local()  # the parse being read: node id -> parent (tree-sitter's own is slow)


def _up(node: Any) -> Any:  # None at the root
    return _local.parents.get(node.id)


def _parents(root: Any) -> dict[int, Any]:
    parents: dict[int, Any] = {}
    stack = [root]
    while stack:
        n = stack.pop()
        for c in n.children:
            parents[c.id] = n
            stack.append(c)
    return parents


# --- C and C++ -------------------------------------------------------------------------------------

_C_DECLARATORS = {"init_declarator", "pointer_declarator", "array_declarator", "attributed_declarator",
                  "parenthesized_declarator", "function_declarator", "reference_declarator"}
_C_NAMES = {"identifier", "field_identifier", "type_identifier", "qualified_identifier", "destructor_name",
            "operator_name"}


def _declared(node: Any) -> Any | None:
    """The name node a declarator declares (through pointers, arrays, initializers)."""
    while node is not None and node.type not in _C_NAMES:
        node = node.child_by_field_name("declarator")
    if node is not None and node.type == "qualified_identifier":
        node = node.child_by_field_name("name")
    return node


def _in_declarator(node: Any) -> bool:
    """Whether an identifier is the name a declaration declares (not a use)."""
    child, parent = node, _up(node)
    while parent is not None and parent.type in _C_DECLARATORS | {"qualified_identifier"}:
        if parent.type == "init_declarator" and parent.child_by_field_name("declarator") != child:
            return False
        if parent.type == "array_declarator" and parent.child_by_field_name("declarator") != child:
            return False
        if parent.type == "function_declarator" and parent.child_by_field_name("declarator") != child:
            return False
        child, parent = parent, _up(parent)
    return parent is not None and parent.type in {"declaration", "parameter_declaration", "field_declaration",
                                                  "function_definition", "type_definition",
                                                  "optional_parameter_declaration"} \
        and parent.child_by_field_name("type") != child


_C_NOISE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', re.S)
_WORD = re.compile(r"[A-Za-z_]\w*")


def _outside_bodies(node: Any) -> Any:
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n.type != "compound_statement":
            stack.extend(reversed(n.children))


def _read_c(root: Any, facts: Facts) -> None:
    locals_of: dict[int, set[str]] = {}  # function node id -> its parameters and locals
    whole = bool(_local.lines)  # else only what is outside function bodies (a file of the branch)
    if not whole:
        facts.words = set(_WORD.findall(_C_NOISE.sub(" ", root.text.decode("utf-8", "replace"))))
    for node in _walk(root) if whole else _outside_bodies(root):
        t = node.type
        if whole and t in ("identifier", "field_identifier", "type_identifier"):
            facts.words.add(_text(node))
        if t == "function_definition":
            declared = _declared(node.child_by_field_name("declarator"))
            if declared is not None:
                static = any(c.type == "storage_class_specifier" and _text(c) == "static" for c in node.children)
                kind = "method" if declared.type == "field_identifier" else "function"
                in_type = _up(node) is not None and _up(node).type == "field_declaration_list"
                facts.definitions.append(Definition(_text(declared), kind, _line(node), not static, not in_type))
        elif t in ("preproc_def", "preproc_function_def"):
            name = node.child_by_field_name("name")
            if name is not None:
                facts.definitions.append(Definition(_text(name), "macro", _line(node)))
        elif t == "preproc_include":
            p = node.child_by_field_name("path")
            if p is not None:
                facts.imports.append(Import(_text(p).strip('"<>'), _line(node)))
        elif t == "type_definition":
            for d in node.children_by_field_name("declarator"):
                name = _declared(d)
                if name is not None:
                    facts.definitions.append(Definition(_text(name), "type", _line(node)))
        elif t in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier"):
            name = node.child_by_field_name("name")
            if name is not None and node.child_by_field_name("body") is not None:
                facts.definitions.append(Definition(_text(name), "type", _line(node)))
        elif t == "enumerator":
            facts.definitions.append(Definition(_text(node.child_by_field_name("name")), "constant", _line(node)))
        elif t == "field_declaration":
            for d in node.children_by_field_name("declarator"):
                name = _declared(d)
                if name is not None:
                    facts.definitions.append(Definition(_text(name), "field", _line(node), top=False))
        elif t == "declaration" and _enclosing_function(node) is None:
            for d in node.children_by_field_name("declarator"):
                name = _declared(d)
                if name is not None:
                    is_function = any(n.type == "function_declarator" for n in _walk(d))
                    facts.definitions.append(Definition(_text(name), "declaration" if is_function else "variable",
                                                        _line(node)))
        elif t == "namespace_definition":
            name = node.child_by_field_name("name")
            if name is not None:
                facts.definitions.append(Definition(_text(name), "namespace", _line(node)))
    if _local.lines:
        for node in _walk(root):
            use = _c_use(node, locals_of) if _wanted(node) else None
            if use is not None:
                facts.uses.append(use)


def _enclosing_function(node: Any) -> Any | None:
    while node is not None and node.type != "function_definition":
        node = _up(node)
    return node


def _c_use(node: Any, locals_of: dict[int, set[str]]) -> Use | None:
    t, parent = node.type, _up(node)
    if parent is None or t not in ("identifier", "type_identifier", "field_identifier"):
        return None
    if parent.type in ("preproc_ifdef", "preproc_defined", "preproc_def", "preproc_function_def", "preproc_params",
                       "goto_statement", "labeled_statement", "namespace_definition", "using_declaration"):
        return None
    name = _text(node)
    if name in _C_WORDS:
        return None
    if t == "field_identifier":
        if parent.type in ("field_expression", "field_designator"):
            return Use("field", name, _line(node))
        return None
    if t == "type_identifier":
        if parent.type in ("struct_specifier", "union_specifier", "enum_specifier", "class_specifier") \
                and parent.child_by_field_name("body") is not None:
            return None
        if _in_declarator(node) or parent.type == "type_definition" and parent.child_by_field_name("type") != node:
            return None
        return Use("type", name, _line(node))
    if _in_declarator(node) or parent.type in ("enumerator",) and parent.child_by_field_name("name") == node:
        return None
    function = _enclosing_function(node)
    if function is not None and function.id not in locals_of:
        declared = _declared(function.child_by_field_name("declarator"))
        locals_of[function.id] = {_text(n) for n in _walk(function) if n.type == "identifier" and _in_declarator(n)
                                  and (declared is None or n.id != declared.id)}
    if function is not None and name in locals_of[function.id]:
        return None
    if parent.type == "call_expression" and parent.child_by_field_name("function") == node:
        return Use("call", name, _line(node))
    if function is None and parent.type not in ("init_declarator", "initializer_list", "argument_list",
                                                 "binary_expression", "initializer_pair"):
        return None  # at file level, an identifier is mostly a macro's odd shape, not a use
    return Use("name", name, _line(node))


# --- Go --------------------------------------------------------------------------------------------

_GO_FUNCS = ("function_declaration", "method_declaration", "func_literal")


def go_package_alias(path: str) -> str:
    """The name a Go import is referred to by without an alias: its last element, skipping a
    major version suffix (/v3) and a gopkg.in style .vN."""
    parts = path.split("/")
    last = parts[-1]
    if re.fullmatch(r"v\d+", last) and len(parts) > 1:
        last = parts[-2]
    return re.sub(r"\.v\d+$", "", last).replace("-", "_")


def _read_go(root: Any, facts: Facts) -> None:
    aliases: dict[str, str] = {}
    for node in _walk(root):
        t = node.type
        if t in ("identifier", "field_identifier", "type_identifier", "package_identifier"):
            facts.words.add(_text(node))
        if t == "package_clause":
            facts.package = next((_text(c) for c in node.children if c.type == "package_identifier"), "")
        elif t == "import_spec":
            path = _text(node.child_by_field_name("path")).strip('"`')
            alias_node = node.child_by_field_name("name")
            alias = _text(alias_node) if alias_node is not None else go_package_alias(path)
            aliases[alias] = path
            facts.imports.append(Import(path, _line(node), alias))
        elif t == "function_declaration":
            facts.definitions.append(Definition(_text(node.child_by_field_name("name")), "function", _line(node)))
        elif t == "method_declaration":
            receiver = node.child_by_field_name("receiver")
            rtype = next((_text(n) for n in _walk(receiver) if n.type == "type_identifier"), "") if receiver else ""
            facts.definitions.append(Definition(_text(node.child_by_field_name("name")), "method", _line(node),
                                                top=False, scope=rtype))
        elif t in ("type_spec", "type_alias"):
            facts.definitions.append(Definition(_text(node.child_by_field_name("name")), "type", _line(node)))
        elif t in ("const_spec", "var_spec") and not _inside(node, _GO_FUNCS):
            for name in node.children_by_field_name("name"):
                facts.definitions.append(Definition(_text(name), "constant" if t == "const_spec" else "variable",
                                                    _line(node)))
        elif t == "field_declaration":
            for name in node.children_by_field_name("name"):
                facts.definitions.append(Definition(_text(name), "field", _line(node), top=False))
            if not node.children_by_field_name("name"):  # embedded: the type's name is the field's
                typ = node.child_by_field_name("type")
                if typ is not None:
                    facts.definitions.append(Definition(_text(typ).lstrip("*").split(".")[-1], "field",
                                                        _line(node), top=False))
        elif t == "method_elem" or t == "method_spec":
            name = node.child_by_field_name("name")
            if name is not None:
                facts.definitions.append(Definition(_text(name), "field", _line(node), top=False))
        elif t == "range_clause":
            right = node.child_by_field_name("right")
            if right is not None and right.type == "int_literal":
                facts.features.append(("go-range-int", _line(node)))
    facts.imports.sort(key=lambda i: i.line)
    for function in (n for n in _walk(root) if _local.lines and n.type in _GO_FUNCS
                     and not _inside(_up(n), _GO_FUNCS)
                     and any(line in _local.lines for line in range(_line(n), n.end_point[0] + 2))):
        declared = _go_locals(function)
        testing = {_text(n) for p in _walk(function) if p.type == "parameter_declaration"
                   and _text(p.child_by_field_name("type")) in ("*testing.T", "*testing.B", "*testing.F", "testing.TB")
                   for n in p.children_by_field_name("name")}
        for node in _walk(function):
            use = _go_use(node, declared, aliases, testing) if _wanted(node) else None
            if use is not None:
                facts.uses.append(use)
    for node in _walk(root) if _local.lines else ():  # package-level declarations: the types they name
        if _wanted(node) and node.type in ("type_identifier", "qualified_type", "selector_expression") \
                and not _inside(node, _GO_FUNCS) and _up(node) is not None \
                and _up(node).type not in ("type_spec", "qualified_type", "selector_expression"):
            use = _go_use(node, set(), aliases)
            if use is not None:
                facts.uses.append(use)


def _inside(node: Any, types: tuple[str, ...]) -> bool:
    while node is not None:
        if node.type in types:
            return True
        node = _up(node)
    return False


def _go_locals(function: Any) -> set[str]:
    names: set[str] = set()
    for node in _walk(function):
        t = node.type
        if t in ("parameter_declaration", "variadic_parameter_declaration", "var_spec", "const_spec"):
            names.update(_text(n) for n in node.children_by_field_name("name"))
        elif t in ("short_var_declaration", "range_clause"):
            left = node.child_by_field_name("left")
            if left is not None:
                names.update(_text(n) for n in left.children if n.type == "identifier")
        elif t == "type_switch_statement":
            alias = node.child_by_field_name("alias")
            if alias is not None:
                names.update(_text(n) for n in _walk(alias) if n.type == "identifier")
        elif t == "type_spec":
            names.add(_text(node.child_by_field_name("name")))
        elif t in ("labeled_statement", "label_name"):
            names.update(_text(n) for n in node.children if n.type == "label_name")
    return names


def _go_use(node: Any, declared: set[str], aliases: dict[str, str], testing: frozenset[str] | set[str] = frozenset()
            ) -> Use | None:
    """A use; kinds beyond the common ones: "builtin" (min, max, clear: dated by the toolchain
    table) and "testing" (a method of a *testing.T or *testing.B parameter)."""
    t, parent = node.type, _up(node)
    if parent is None:
        return None
    if t == "selector_expression":
        operand, name = node.child_by_field_name("operand"), node.child_by_field_name("field")
        if operand is not None and operand.type == "identifier" and _text(operand) in testing and name is not None:
            return Use("testing", _text(name), _line(node), _text(operand))
        if operand is not None and operand.type == "identifier" and _text(operand) in aliases \
                and _text(operand) not in declared:
            return Use("qualified", _text(name), _line(node), _text(operand), _called(node))
        return Use("field", _text(name), _line(name)) if name is not None else None
    if t == "qualified_type":
        package, name = node.child_by_field_name("package"), node.child_by_field_name("name")
        if package is not None and name is not None and _text(package) in aliases:
            return Use("qualified", _text(name), _line(node), _text(package))
        return None
    name = _text(node)
    if t == "type_identifier":
        if parent.type in ("type_spec", "type_alias", "qualified_type") or name in _GO_PREDECLARED \
                or name in declared:
            return None
        return Use("type", name, _line(node))
    if t == "identifier" and name in ("min", "max", "clear") and name not in declared \
            and parent.type == "call_expression" and parent.child_by_field_name("function") == node:
        return Use("builtin", name, _line(node))
    if t != "identifier" or name in _GO_PREDECLARED or name in declared:
        return None
    if parent.type == "selector_expression":
        return None  # its operand: seen with the selector
    if parent.type == "literal_element" and _up(parent) is not None and _up(parent).type == "keyed_element" \
            and _up(parent).child_by_field_name("key") == parent:
        return Use("field", name, _line(node))  # T{Name: x}
    if parent.type in ("parameter_declaration", "variadic_parameter_declaration", "var_spec", "const_spec",
                       "function_declaration", "method_declaration", "labeled_statement", "label_name"):
        return None
    if parent.type == "call_expression" and parent.child_by_field_name("function") == node:
        return Use("call", name, _line(node))
    return Use("name", name, _line(node))


# --- Python ----------------------------------------------------------------------------------------

_PY_BINDERS = {"parameters", "lambda_parameters", "typed_parameter", "default_parameter", "typed_default_parameter",
               "list_splat_pattern", "dictionary_splat_pattern", "as_pattern_target", "pattern_list", "tuple_pattern",
               "list_pattern", "global_statement", "nonlocal_statement", "keyword_argument"}


def _read_python(root: Any, facts: Facts) -> None:
    modules: dict[str, str] = {}  # alias -> module
    for node in _walk(root):
        t = node.type
        if t == "identifier":
            facts.words.add(_text(node))
        top = _up(node) is not None and (_up(node).type == "module" or _up(node).type == "decorated_definition"
                                           and _up(_up(node)) is not None
                                           and _up(_up(node)).type == "module")
        if t in ("function_definition", "class_definition"):
            in_class = _inside(_up(node), ("class_definition",)) \
                and not _inside(_up(node), ("function_definition",))
            facts.definitions.append(Definition(_text(node.child_by_field_name("name")),
                                                "function" if t == "function_definition" else "type", _line(node),
                                                top=top, scope="class" if in_class else ""))
            if node.child_by_field_name("type_parameters") is not None:
                facts.features.append(("py-type-params", _line(node)))
            if t == "function_definition" and top and (parameters := node.child_by_field_name("parameters")):
                facts.params[_text(node.child_by_field_name("name"))] = _py_params(parameters)
        elif t == "call" and _local.lines and (callee := node.child_by_field_name("function")) is not None \
                and callee.type == "identifier" and (arguments := node.child_by_field_name("arguments")):
            facts.keywords += [(_text(callee), _text(a.child_by_field_name("name")), _line(a))
                               for a in arguments.children if a.type == "keyword_argument" and _wanted(a)]
        elif t == "expression_statement" and _up(node) is not None and _up(node).type == "module":
            for a in node.children:
                if a.type == "assignment":
                    left = a.child_by_field_name("left")
                    for n in _walk(left) if left is not None else ():
                        if n.type == "identifier" and (_up(n) is None or _up(n).type != "attribute"):
                            facts.definitions.append(Definition(_text(n), "variable", _line(n)))
        elif t == "import_statement":
            for name in node.children_by_field_name("name"):
                if name.type == "aliased_import":
                    module, alias = _text(name.child_by_field_name("name")), _text(name.child_by_field_name("alias"))
                else:
                    module = alias = _text(name)
                    alias = alias.split(".")[0]
                modules[alias] = module
                facts.imports.append(Import(module, _line(node), alias))
                if top:
                    facts.definitions.append(Definition(alias, "import", _line(node)))
        elif t == "import_from_statement":
            module = _text(node.child_by_field_name("module_name"))
            names, binds = [], []
            for name in node.children_by_field_name("name"):
                real = name.child_by_field_name("name") if name.type == "aliased_import" else name
                alias = name.child_by_field_name("alias") if name.type == "aliased_import" else name
                names.append(_text(real))
                binds.append(_text(alias))
                if top:
                    facts.definitions.append(Definition(_text(alias), "import", _line(node)))
            facts.imports.append(Import(module, _line(node), "", tuple(names), tuple(binds)))
            modules.update(facts.imports[-1].modules())
            if any(c.type == "wildcard_import" for c in node.children) and top:
                facts.definitions.append(Definition("*", "import", _line(node)))
        elif t == "match_statement":
            facts.features.append(("py-match", _line(node)))
        elif t == "named_expression":
            facts.features.append(("py-walrus", _line(node)))
        elif t == "except_clause" and any(c.type == "*" for c in node.children):
            facts.features.append(("py-except-star", _line(node)))
        elif t == "type_alias_statement":
            facts.features.append(("py-type-alias", _line(node)))
        elif t == "positional_separator":
            facts.features.append(("py-positional-only", _line(node)))
    bound = _py_bound(root) if _local.lines else set()
    for node in _walk(root) if _local.lines else ():
        use = _py_use(node, bound, modules) if _wanted(node) else None
        if use is not None:
            facts.uses.append(use)


def _py_params(parameters: Any) -> tuple[frozenset[str], bool]:
    """A Python function's parameter names, and whether it takes **kwargs."""
    names: set[str] = set()
    kwargs = False
    for p in parameters.children:
        kwargs |= p.type == "dictionary_splat_pattern" or any(c.type == "dictionary_splat_pattern" for c in p.children)
        name = p if p.type == "identifier" else p.child_by_field_name("name") if p.type in (
            "default_parameter", "typed_default_parameter") else next(
            (c for c in p.children if c.type == "identifier"), None) if p.type == "typed_parameter" else None
        if name is not None:
            names.add(_text(name))
    return frozenset(names), kwargs


def _py_bound(root: Any) -> set[str]:
    """Every name bound anywhere in the file other than at module level (locals, parameters,
    loop and with targets): a use of one of them is not judged."""
    names: set[str] = set()
    for node in _walk(root):
        t = node.type
        inner = _inside(_up(node), ("function_definition", "class_definition", "lambda"))
        if t in _PY_BINDERS:
            names.update(_text(n) for n in node.children if n.type == "identifier")
        elif t in ("assignment", "augmented_assignment", "for_statement", "for_in_clause") \
                and (inner or t != "assignment"):
            left = node.child_by_field_name("left")
            if left is not None:
                names.update(_text(n) for n in _walk(left) if n.type == "identifier"
                             and (_up(n) is None or _up(n).type != "attribute"))
        elif t == "named_expression":
            names.add(_text(node.child_by_field_name("name")))
        elif t in ("as_pattern", "with_item"):
            alias = node.child_by_field_name("alias")
            if alias is not None:
                names.update(_text(n) for n in _walk(alias) if n.type == "identifier")
        elif t in ("function_definition", "class_definition") and inner:
            names.add(_text(node.child_by_field_name("name")))
        elif t in ("import_statement", "import_from_statement") and inner:
            names.update(_text(n) for n in _walk(node) if n.type == "identifier")
    return names


def _py_use(node: Any, bound: set[str], modules: dict[str, str]) -> Use | None:
    t, parent = node.type, _up(node)
    if parent is None:
        return None
    if t == "attribute":
        obj, attr = node.child_by_field_name("object"), node.child_by_field_name("attribute")
        if obj is not None and obj.type == "identifier" and _text(obj) in modules and _text(obj) not in bound:
            return Use("qualified", _text(attr), _line(node), _text(obj), _called(node))
        return None
    if t != "identifier":
        return None
    name = _text(node)
    if name in _PY_BUILTINS or name in bound or name in modules:
        return None
    if parent.type in ("attribute", "keyword_argument", "function_definition", "class_definition", "dotted_name",
                       "aliased_import", "import_from_statement", "import_statement", "parameters", "global_statement",
                       "nonlocal_statement"):
        return None
    if parent.type == "assignment" and parent.child_by_field_name("left") == node:
        return None
    if parent.type == "call" and parent.child_by_field_name("function") == node:
        return Use("call", name, _line(node))
    return Use("name", name, _line(node))
