"""Language and library features newer than the toolchain a branch declares (`go 1.N` in go.mod,
`requires-python`/`python_requires`). A small table of well-known cases, not a compiler: what it
does not list it does not see (range over a func, 1.23, needs types; so does a method on a value
that is not a `*testing.T`/`*testing.B`). C and C++ standards are not checked yet."""

from __future__ import annotations

import re

# Go: std packages (import path -> version), package-qualified APIs, builtins, syntax features
# found by definitions.py, and methods of the testing types.
GO_PACKAGES = {"slices": (1, 21), "maps": (1, 21), "cmp": (1, 21), "log/slog": (1, 21), "math/rand/v2": (1, 22),
               "iter": (1, 23), "unique": (1, 23), "structs": (1, 23), "weak": (1, 24), "crypto/mlkem": (1, 24),
               "crypto/hkdf": (1, 24), "crypto/sha3": (1, 24), "testing/synctest": (1, 25)}
GO_APIS = {"strings.SplitSeq": (1, 24), "strings.SplitAfterSeq": (1, 24), "strings.FieldsSeq": (1, 24),
           "strings.FieldsFuncSeq": (1, 24), "strings.Lines": (1, 24), "bytes.SplitSeq": (1, 24),
           "bytes.Lines": (1, 24), "bytes.FieldsSeq": (1, 24), "os.CopyFS": (1, 23), "reflect.TypeFor": (1, 22),
           "sync.OnceFunc": (1, 21), "sync.OnceValue": (1, 21), "sync.OnceValues": (1, 21),
           "context.WithoutCancel": (1, 21), "context.AfterFunc": (1, 21), "context.WithDeadlineCause": (1, 21),
           "context.WithTimeoutCause": (1, 21), "errors.Join": (1, 20), "context.WithCancelCause": (1, 20),
           "os.Root": (1, 24), "os.OpenRoot": (1, 24), "maps.Keys": (1, 23), "maps.Values": (1, 23),
           "slices.Collect": (1, 23), "slices.Sorted": (1, 23), "slices.Values": (1, 23), "slices.All": (1, 23)}
GO_BUILTINS = {"min": (1, 21), "max": (1, 21), "clear": (1, 21)}
GO_SYNTAX = {"go-range-int": ("range over an integer", (1, 22))}
GO_TESTING_METHODS = {"Context": (1, 24), "Chdir": (1, 24), "Loop": (1, 24), "Output": (1, 25), "Attr": (1, 25)}

# Python: syntax found by definitions.py, std modules, module-qualified APIs.
PY_SYNTAX = {"py-walrus": ("the walrus operator `:=`", (3, 8)), "py-positional-only": ("positional-only `/`", (3, 8)),
             "py-match": ("`match` statements", (3, 10)), "py-except-star": ("`except*`", (3, 11)),
             "py-type-alias": ("`type X = ...` aliases", (3, 12)), "py-type-params": ("type parameters `[T]`", (3, 12))}
PY_MODULES = {"zoneinfo": (3, 9), "graphlib": (3, 9), "tomllib": (3, 11)}
PY_APIS = {"functools.cache": (3, 9), "math.lcm": (3, 9), "itertools.pairwise": (3, 10), "itertools.batched": (3, 12),
           "typing.Self": (3, 11), "typing.override": (3, 12), "typing.TypeAlias": (3, 10),
           "typing.ParamSpec": (3, 10), "typing.assert_never": (3, 11), "typing.Never": (3, 11),
           "asyncio.TaskGroup": (3, 11), "asyncio.timeout": (3, 11), "asyncio.to_thread": (3, 9),
           "contextlib.chdir": (3, 11), "datetime.UTC": (3, 11), "enum.StrEnum": (3, 11)}

Version = tuple[int, int]


def shown(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def go_version(go_mod: str) -> Version | None:
    """The `go 1.N` line of a go.mod."""
    m = re.search(r"^go\s+(\d+)\.(\d+)", go_mod, re.M)
    return (int(m.group(1)), int(m.group(2))) if m else None


def python_version(text: str) -> Version | None:
    """The lowest Python 3 a pyproject.toml, setup.cfg or setup.py declares (`>=3.N`, `~=3.N`)."""
    m = re.search(r"""(?:requires-python|python_requires)\s*[=:]\s*["']?\s*(?:>=|~=|==)\s*3\.(\d+)""", text)
    return (3, int(m.group(1))) if m else None
