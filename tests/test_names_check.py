"""The names check (issue 16 point 5): a fix whose new lines use what the branch lacks is flagged,
naming what and where; clean picks included. Each test is a real situation from public
histories, rebuilt small: a branch cut, main moving on, then the fix on main."""

from __future__ import annotations

import pytest

from bot.engine import symbols, syntax
from bot.engine.git import Git
from tests.gitrepo import GitRepo
from tests.test_backport_cli import backport


def fix_on_main(repo: GitRepo, base: dict[str, str | None], main_only: dict[str, str | None],
                fix: dict[str, str | None], branch_only: dict[str, str | None] | None = None) -> str:
    """The branch 8.1 cut from `base`; main gets `main_only`, then the fix; the branch may get
    its own commit. Returns the fix."""
    repo.commit("base", base)
    repo.branch("8.1")
    if branch_only:
        repo.commit("on the branch", branch_only, on="8.1")
        repo.checkout("main")
    if main_only:
        repo.commit("feature on main", main_only)
    return repo.commit("the fix", fix)


def check(repo: GitRepo, fix: str) -> list[str]:
    return symbols.missing_names(Git(repo.path), fix, f"{fix}^", "8.1", "8.1")


STRV_H = "#pragma once\n#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)\n"
UNIT_C = """#include <string.h>
#include "strv.h"

int unit_load(char **names) {
        int n = 0;
        STRV_FOREACH(i, names)
                n++;
        return n;
}
"""


def test_a_helper_macro_only_main_has_is_flagged_on_a_clean_pick(repo: GitRepo):
    # systemd: a fix to v255-stable calls STRV_FOREACH_PAIR, which main grew after the branch
    fixed = UNIT_C.replace("        return n;", "        STRV_FOREACH_PAIR(a, b, names)\n                n--;\n"
                                               "        return n;")
    fix = fix_on_main(repo, {"src/strv.h": STRV_H, "src/unit.c": UNIT_C},
                      {"src/strv.h": STRV_H + "#define STRV_FOREACH_PAIR(x, y, l) for (;;)\n"},
                      {"src/unit.c": fixed})
    found = check(repo, fix)
    assert found == ["uses `STRV_FOREACH_PAIR()` (src/unit.c:8), defined nowhere on 8.1 (main defines it in "
                     "src/strv.h)"]


MANAGER_H = "struct Manager {\n        int n_units;\n};\n"
MANAGER_C = """#include "manager.h"

static int manager_tick(struct Manager *m) {
        m->n_units++;
        return 0;
}
"""


def test_a_struct_field_only_main_has(repo: GitRepo):
    fix = fix_on_main(repo, {"src/manager.h": MANAGER_H, "src/manager.c": MANAGER_C},
                      {"src/manager.h": MANAGER_H.replace("};", "        unsigned long timeout_usec;\n};")},
                      {"src/manager.c": MANAGER_C.replace("        return 0;", "        m->timeout_usec = 0;\n"
                                                                             "        return 0;")})
    assert check(repo, fix) == ["uses `.timeout_usec` (src/manager.c:5), defined nowhere on 8.1 "
                                "(main defines it in src/manager.h)"]


def test_an_enum_constant_only_main_has(repo: GitRepo):
    # FRRouting: a fix tests a state the enum got in a later feature
    header = "enum link_state {\n        LINK_UP,\n        LINK_DOWN,\n};\n"
    code = "#include \"link.h\"\n\nint link_gone(enum link_state s) {\n        return s == LINK_DOWN;\n}\n"
    fix = fix_on_main(repo, {"lib/link.h": header, "lib/link.c": code},
                      {"lib/link.h": header.replace("LINK_DOWN,", "LINK_DOWN,\n        LINK_LINGER,")},
                      {"lib/link.c": code.replace("s == LINK_DOWN;", "s == LINK_DOWN || s == LINK_LINGER;")})
    assert check(repo, fix) == ["uses `LINK_LINGER` (lib/link.c:4), defined nowhere on 8.1 (main defines it in "
                                "lib/link.h)"]


def test_a_name_the_branch_has_only_in_a_comment_is_still_flagged(repo: GitRepo):
    util = "/* TODO: a unit_reset_timer() helper */\nint unit_tick(void);\n"
    code = "#include \"util.h\"\n\nvoid f(void) {\n        unit_tick();\n}\n"
    fix = fix_on_main(repo, {"src/util.h": util, "src/f.c": code},
                      {"src/util.h": util + "void unit_reset_timer(void);\n"},
                      {"src/f.c": code.replace("unit_tick();", "unit_tick();\n        unit_reset_timer();")})
    assert check(repo, fix) == ["uses `unit_reset_timer()` (src/f.c:5), defined nowhere on 8.1 "
                                "(main defines it in src/util.h)"]


def test_a_name_the_branch_defines_elsewhere_is_not_flagged(repo: GitRepo):
    util = "int unit_tick(void);\n"
    code = "#include \"util.h\"\n\nvoid f(void) {\n        unit_tick();\n}\n"
    fix = fix_on_main(repo, {"src/util.h": util, "src/f.c": code, "src/timer.h": "#pragma once\n"},
                      {"src/timer.h": "#pragma once\nvoid unit_reset_timer(void);\n"},
                      {"src/f.c": code.replace("unit_tick();", "unit_tick();\n        unit_reset_timer();")},
                      branch_only={"src/util.h": util + "void unit_reset_timer(void);\n"})
    assert check(repo, fix) == []


def test_libc_locals_and_methods_are_not_flagged(repo: GitRepo):
    code = "#include <string.h>\n\nint f(const char *p) {\n        return 0;\n}\n"
    py = "class Box:\n    def put(self, x):\n        return x\n"
    go = "package a\n\nimport \"strings\"\n\nfunc F(s string) int {\n\treturn 0\n}\n"
    go_mod = "module example.com/m\n\ngo 1.20\n"
    fix = fix_on_main(repo, {"src/f.c": code, "lib/box.py": py, "a/a.go": go, "go.mod": go_mod},
                      {"src/other.c": "int helper(void) { return strlen(\"\"); }\n"},
                      {"src/f.c": code.replace("        return 0;", "        size_t len = strlen(p);\n"
                                               "        char *copy = strndup(p, len);\n        free(copy);\n"
                                               "        return (int) len;"),
                       "lib/box.py": py.replace("return x", "items = [x]\n        items.append(x)\n"
                                                "        self.seen = len(items)\n        return items.pop()"),
                       "a/a.go": go.replace("\treturn 0", "\tvar b strings.Builder\n\tb.WriteString(s)\n"
                                            "\tn := b.Len()\n\treturn n")})
    assert check(repo, fix) == []


def test_an_include_absent_on_the_branch(repo: GitRepo):
    code = "#include \"basic/log.h\"\n\nint f(void) {\n        return 0;\n}\n"
    fix = fix_on_main(repo, {"src/basic/log.h": "#pragma once\n", "src/core/f.c": code},
                      {"src/basic/pidref.h": "#pragma once\n"},
                      {"src/core/f.c": "#include <stdlib.h>\n#include \"basic/pidref.h\"\n" + code})
    assert check(repo, fix) == ["includes `basic/pidref.h` (src/core/f.c:2), absent on 8.1"]


GO_MOD = "module go.example.org/proj/v3\n\ngo 1.23\n"
HELPERS = "package testutils\n\nfunc Retry(n int) {}\n"
SERVER_TEST = """package server

import (
\t"testing"

\t"go.example.org/proj/v3/tests/testutils"
)

func TestPut(t *testing.T) {
\ttestutils.Retry(3)
}
"""


def test_go_test_framework_helper_only_on_main(repo: GitRepo):
    # etcd-style: the fix's test calls a framework helper main grew after the branch
    fix = fix_on_main(repo, {"go.mod": GO_MOD, "tests/testutils/helpers.go": HELPERS,
                             "server/put_test.go": SERVER_TEST},
                      {"tests/testutils/wait.go": "package testutils\n\nfunc WaitLeader(t any) int { return 0 }\n"},
                      {"server/put_test.go": SERVER_TEST.replace("\ttestutils.Retry(3)\n",
                                                                 "\ttestutils.Retry(3)\n\ttestutils.WaitLeader(t)\n")})
    assert check(repo, fix) == ["uses `testutils.WaitLeader()` (server/put_test.go:11), defined nowhere on 8.1 "
                                "(main defines it in tests/testutils/wait.go)"]


def test_go_import_path_only_on_main(repo: GitRepo):
    fix = fix_on_main(repo, {"go.mod": GO_MOD, "tests/testutils/helpers.go": HELPERS,
                             "server/put_test.go": SERVER_TEST},
                      {"pkg/featuregate/gate.go": "package featuregate\n\nfunc Enabled(f string) bool {\n"
                                                  "\treturn true\n}\n"},
                      {"server/put_test.go": SERVER_TEST.replace(
                          '\t"go.example.org/proj/v3/tests/testutils"\n',
                          '\t"go.example.org/proj/v3/pkg/featuregate"\n\t"go.example.org/proj/v3/tests/testutils"\n')
                       .replace("\ttestutils.Retry(3)\n", "\ttestutils.Retry(3)\n\t_ = featuregate.Enabled(\"x\")\n")})
    assert check(repo, fix) == ["imports `go.example.org/proj/v3/pkg/featuregate` (server/put_test.go:6), "
                                "absent on 8.1"]


def test_go_124_api_on_a_branch_that_declares_go_123(repo: GitRepo):
    fix = fix_on_main(repo, {"go.mod": GO_MOD, "tests/testutils/helpers.go": HELPERS,
                             "server/put_test.go": SERVER_TEST},
                      {"go.mod": GO_MOD.replace("go 1.23", "go 1.24")},
                      {"server/put_test.go": SERVER_TEST.replace("\ttestutils.Retry(3)\n",
                                                                 "\ttestutils.Retry(3)\n\tctx := t.Context()\n"
                                                                 "\t_ = ctx\n\tfor i := range 3 {\n\t\t_ = i\n\t}\n")})
    assert check(repo, fix) == [
        "uses Go 1.24 API `t.Context()` (server/put_test.go:11), the branch declares go 1.23 (go.mod)"]
    # range over an integer is 1.22: fine on 1.23


def test_go_helper_the_branch_already_defines_in_another_file_of_the_package(repo: GitRepo):
    util = "package server\n\nfunc isLeader(id int) bool {\n\treturn id == 1\n}\n"
    member = "package server\n\nfunc members() []int {\n\treturn nil\n}\n"
    fix = fix_on_main(repo, {"go.mod": GO_MOD, "server/util.go": util, "server/member.go": member},
                      {},
                      {"server/member.go": member + "\nfunc isLearner(id int) bool {\n\treturn id == 2\n}\n"},
                      branch_only={"server/util.go": util + "\nfunc isLearner(id int) bool {\n\treturn id > 1\n}\n"})
    assert check(repo, fix) == ["adds `isLearner()` in server/member.go:7, already defined on 8.1 in "
                                "server/util.go:7"]


def test_c_function_the_branch_already_defines_in_another_file(repo: GitRepo):
    a = "int a(void) {\n        return 0;\n}\n"
    fix = fix_on_main(repo, {"lib/a.c": a, "lib/b.c": "int b(void) {\n        return 1;\n}\n"},
                      {},
                      {"lib/a.c": a + "\nint str_trim(char *s) {\n        return 0;\n}\n"
                                      "\nstatic int local_helper(void) {\n        return 0;\n}\n"},
                      branch_only={"lib/b.c": "int b(void) {\n        return 1;\n}\n\nint str_trim(char *s) {\n"
                                              "        return 1;\n}\n\nstatic int local_helper(void) {\n"
                                              "        return 1;\n}\n"})
    assert check(repo, fix) == ["adds `str_trim()` in lib/a.c:5, already defined on 8.1 in lib/b.c:5"]


def test_python_import_of_a_module_absent_on_the_branch(repo: GitRepo):
    core = "from pkg import util\n\n\ndef run(x):\n    return util.clean(x)\n"
    fix = fix_on_main(repo, {"pkg/__init__.py": "", "pkg/util.py": "def clean(x):\n    return x\n",
                             "pkg/core.py": core},
                      {"pkg/_compat.py": "def shim(x):\n    return x\n",
                       "pkg/util.py": "def clean(x):\n    return x\n\n\ndef strip(x):\n    return x\n"},
                      {"pkg/core.py": core.replace("from pkg import util\n",
                                                   "from pkg import util\nfrom pkg._compat import shim\n")
                       .replace("return util.clean(x)", "return shim(util.strip(util.clean(x)))")})
    assert check(repo, fix) == [
        "imports `pkg._compat` (pkg/core.py:2), absent on 8.1",
        "uses `util.strip()` (pkg/core.py:6), defined nowhere on 8.1 (main defines it in pkg/util.py)"]


def test_python_syntax_newer_than_the_branch_declares(repo: GitRepo):
    pyproject = '[project]\nname = "p"\nrequires-python = ">=3.8"\n'
    code = "def kind(x):\n    return x\n"
    fix = fix_on_main(repo, {"pyproject.toml": pyproject, "p/k.py": code},
                      {"pyproject.toml": pyproject.replace("3.8", "3.10")},
                      {"p/k.py": "def kind(x):\n    match x:\n        case 1:\n            return 'one'\n"
                                 "    if (n := len(str(x))) > 3:\n        return n\n    return x\n"})
    assert check(repo, fix) == ["uses Python 3.10 `match` statements (p/k.py:2), the branch declares Python >= 3.8 "
                                "(pyproject.toml)"]


def test_the_engine_flags_a_clean_pick_naming_what_and_where(repo: GitRepo, capsys: pytest.CaptureFixture[str]):
    fixed = UNIT_C.replace("        return n;", "        STRV_FOREACH_PAIR(a, b, names)\n                n--;\n"
                                               "        return n;")
    fix = fix_on_main(repo, {"src/strv.h": STRV_H, "src/unit.c": UNIT_C},
                      {"src/strv.h": STRV_H + "#define STRV_FOREACH_PAIR(x, y, l) for (;;)\n"},
                      {"src/unit.c": fixed})
    code, (out,) = backport(repo, fix, "8.1", capsys=capsys)
    assert code == 0, out
    assert out["warnings"] == [f"names check of {fix[:10]}: uses `STRV_FOREACH_PAIR()` (src/unit.c:8), defined "
                               "nowhere on 8.1 (main defines it in src/strv.h)"]


def test_enclosing_kinds_across_languages():
    c = "struct a {\n        int x;\n};\nint f(void) {\n        int y = 0;\n        if (y) {\n" \
        "                y++;\n        }\n        return y;\n}\nstatic const int t[] = {\n        1,\n};\n"
    assert syntax.enclosing_kinds("x.c", c, [1, 2, 4, 5, 7, 12]) == ["top", "type", "top", "function", "function",
                                                                      "initializer"]
    go = "package a\n\ntype T struct {\n\tA int\n}\n\nfunc (t T) F() int {\n\treturn t.A\n}\n"
    assert syntax.enclosing_kinds("a.go", go, [4, 7, 8]) == ["type", "top", "function"]
    py = "class A:\n    x = 1\n\n    def f(self):\n        return 1\n"
    assert syntax.enclosing_kinds("a.py", py, [1, 2, 4, 5]) == ["top", "type", "type", "function"]
    assert syntax.enclosing_kinds("a.txt", "x\n", [1]) == [None]


def test_errors_read_go_and_cpp():
    assert syntax.errors("a.go", "package a\n\nfunc F() {}\n") == 0
    assert syntax.errors("a.go", "package a\n\nfunc F( {}\n") > 0
    assert syntax.errors("a.cc", "namespace n { class A { public: int f(); }; }\n") == 0
    assert syntax.errors("a.cc", "namespace n { class A { public: int f( }; }\n") > 0


def test_a_name_the_branch_uses_in_code_is_there_even_when_main_alone_defines_it(repo: GitRepo):
    # systemd: main's EFI headers define EINVAL as a fallback; the branch takes it from libc
    code = "#include <errno.h>\n\nint g(int x) {\n        return x ? -EINVAL : 0;\n}\n"
    fdset = "#include <errno.h>\n\nint f(int fd) {\n        return 0;\n}\n"
    fix = fix_on_main(repo, {"src/basic/g.c": code, "src/shared/fdset.c": fdset},
                      {"src/fundamental/efivars-fundamental.h": "#pragma once\n#define EINVAL 22\n"},
                      {"src/shared/fdset.c": fdset.replace("return 0;", "if (fd < 0)\n                return -EINVAL;\n"
                                                                        "        return 0;")})
    assert check(repo, fix) == []


def test_a_field_the_fix_adds_in_another_file_comes_with_it(repo: GitRepo):
    # systemd v252: the fix adds oom_policy to struct Scope and uses it in dbus-scope.c, while
    # main also has a field of that name in service.h
    scope_h = "struct Scope {\n        int result;\n};\n"
    dbus = "#include \"scope.h\"\n\nint prop(struct Scope *s) {\n        return s->result;\n}\n"
    fix = fix_on_main(repo, {"src/core/scope.h": scope_h, "src/core/dbus-scope.c": dbus},
                      {"src/core/service.h": "struct Service {\n        int oom_policy;\n};\n"},
                      {"src/core/scope.h": scope_h.replace("};", "        int oom_policy;\n};"),
                       "src/core/dbus-scope.c": dbus.replace("return s->result;", "return s->result + s->oom_policy;")})
    assert check(repo, fix) == []



def test_a_new_test_program_with_its_own_main_is_no_duplicate(repo):
    # A fix that adds a test program (tests/overflow.c, its own main()) beside src/server.c's main():
    # two executables, not one definition added twice.
    fix = fix_on_main(repo, {"src/server.c": "int main(void) {\n        return 0;\n}\n"}, {},
                      {"tests/overflow.c": "int main(void) {\n        return 1;\n}\n"})
    assert check(repo, fix) == []


MAN = """<refentry id="kernel-install" xmlns:xi="http://www.w3.org/2001/XInclude">
  <variablelist>
    <varlistentry>
      <term>uki</term>
      <listitem><para>Unified kernel image.</para></listitem>
    </varlistentry>
  </variablelist>
</refentry>
"""


def test_an_xinclude_of_a_file_only_main_has_is_flagged(repo: GitRepo):
    # systemd: man pages on main name the version each entry came with through
    # <xi:include href="version-info.xml" .../>; v254-stable has no version-info.xml, and its
    # maintainers dropped those lines from every documentation backport.
    fix = fix_on_main(repo, {"man/kernel-install.xml": MAN},
                      {"man/version-info.xml": "<para>Added in version 254.</para>\n"},
                      {"man/kernel-install.xml": MAN.replace(
                          "image.</para></listitem>",
                          "image.</para>\n      <xi:include href=\"version-info.xml\" xpointer=\"v254\"/>\n"
                          "      <xi:include href=\"../man/kernel-install.xml\" xpointer=\"uki\"/></listitem>")})
    assert check(repo, fix) == ["includes `version-info.xml` (man/kernel-install.xml:6), absent on 8.1"]


NETWORKD_TESTS = '''import subprocess


def read_networkd_log(invocation_id=None):
    return subprocess.check_output(["journalctl", "-u", "systemd-networkd"], text=True)


def test_bond_reconfigure():
    reconfigure("dummy98")
'''


def test_a_keyword_the_branch_s_function_does_not_take_is_flagged(repo: GitRepo):
    # systemd's networkd tests: a test added on main passes `since=` to read_networkd_log(), a
    # parameter main gained after v254 was cut; the pick is clean and would fail there.
    with_since = NETWORKD_TESTS.replace("def read_networkd_log(invocation_id=None):",
                                        "def read_networkd_log(invocation_id=None, since=None, **options):")
    fix = fix_on_main(repo, {"test/networkd_tests.py": NETWORKD_TESTS}, {"test/networkd_tests.py": with_since},
                      {"test/networkd_tests.py": with_since.replace(
                          '    reconfigure("dummy98")\n',
                          '    since = "-1min"\n    reconfigure("dummy98")\n'
                          '    assert "down" not in read_networkd_log(\n'
                          '        invocation_id=None,\n        since=since)\n')})
    assert check(repo, fix) == ["calls `read_networkd_log(since=...)` (test/networkd_tests.py:13), but "
                                "`read_networkd_log` on 8.1 takes no `since`"]
