"""Repositories with realistic drift between main and a release branch, one builder per case.

Each returns the repository and the ref to backport to `rel`."""

from __future__ import annotations

from tests.gitrepo import GitRepo

SERVER = """\
#include <stdio.h>

int add(int a, int b) {
    return a + b;
}

int handle(int x) {
    int y = x * 2;
    if (y > 10) {
        return -1;
    }
    return y;
}

int main(void) {
    printf("%d\\n", handle(add(1, 2)));
    return 0;
}
"""


def fixed(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def base(repo: GitRepo) -> GitRepo:
    repo.commit("Initial import", {"src/server.c": SERVER, "README": "server\n"})
    repo.branch("rel")
    return repo


def clean(repo: GitRepo) -> str:
    base(repo)
    repo.commit("Unrelated work on main", {"README": "server, now better\n"})
    repo.commit("Fix overflow in handle (#12)", {"src/server.c": fixed(SERVER, "return -1;", "return 0;")})
    return "#12"


def whitespace(repo: GitRepo) -> str:
    base(repo)
    retabbed = SERVER.replace("    int y = x * 2;\n    if (y > 10) {", "\tint y = x * 2;\n\tif (y > 10) {")
    repo.commit("Reindent handle", {"src/server.c": retabbed}, on="rel")
    repo.checkout("main")
    repo.commit("Tighten the limit (#13)", {"src/server.c": fixed(SERVER, "if (y > 10)", "if (y > 8)")})
    return "#13"


def context_moved(repo: GitRepo) -> str:
    base(repo)
    repo.commit("Scale by three on rel", {"src/server.c": fixed(SERVER, "x * 2", "x * 3")}, on="rel")
    repo.checkout("main")
    repo.commit("Tighten the limit (#14)", {"src/server.c": fixed(SERVER, "if (y > 10)", "if (y > 8)")})
    return "#14"


def same_change(repo: GitRepo) -> str:
    base(repo)
    both = fixed(fixed(SERVER, "if (y > 10)", "if (y > 8)"), "x * 2", "x * 3")
    repo.commit("Rework handle for the old release", {"src/server.c": both}, on="rel")
    repo.checkout("main")
    fix = fixed(fixed(SERVER, "if (y > 10)", "if (y > 8)"), "return a + b;", "return a + b; /* checked */")
    repo.commit("Tighten the limit, note the sum (#15)", {"src/server.c": fix})
    return "#15"


def prerequisite(repo: GitRepo) -> str:
    """The fix edits a line that an earlier main-branch PR (#10) changed: #10 is missing on rel."""
    base(repo)
    with_limit = fixed(fixed(SERVER, "int handle(int x) {", "int handle(int x, int limit) {"),
                       "if (y > 10)", "if (y > limit)")
    with_limit = fixed(with_limit, "handle(add(1, 2))", "handle(add(1, 2), 10)")
    repo.commit("Add a limit parameter to handle (#10)", {"src/server.c": with_limit})
    repo.commit("Unrelated docs (#11)", {"README": "server docs\n"})
    repo.commit("Fix off-by-one in the limit (#16)", {"src/server.c": fixed(with_limit, "y > limit", "y >= limit")})
    return "#16"


def renamed(repo: GitRepo) -> str:
    base(repo)
    repo.rename("src/server.c", "src/core/server.c", "Move server into core (#17)")
    repo.commit("Fix overflow in handle (#18)", {"src/core/server.c": fixed(SERVER, "return -1;", "return 0;")})
    return "#18"


def deleted_on_target(repo: GitRepo) -> str:
    base(repo)
    repo.commit("Add the cache module (#19)", {"src/cache.c": "int cache_get(void) {\n    return 1;\n}\n"})
    repo.commit("Fix cache_get (#20)", {"src/cache.c": "int cache_get(void) {\n    return 2;\n}\n"})
    return "#20"


def merge_commit(repo: GitRepo) -> str:
    base(repo)
    repo.git("checkout", "-q", "-b", "dev/feature")
    repo.commit("Fix overflow", {"src/server.c": fixed(SERVER, "return -1;", "return 0;")})
    repo.commit("Document the fix", {"README": "server\nhandle no longer overflows\n"})
    repo.checkout("main")
    repo.commit("Unrelated main work", {"NEWS": "news\n"})
    repo.merge("dev/feature", "Merge pull request #21 from dev/feature\n\nFix overflow in handle")
    return "#21"


def multi_commit(repo: GitRepo) -> str:
    base(repo)
    step1 = fixed(SERVER, "return -1;", "return 0;")
    repo.commit("Fix overflow in handle (#22)", {"src/server.c": step1})
    repo.commit("Add a test for the overflow (#22)", {"tests/overflow.c": "int main(void) { return 0; }\n"})
    return "#22"


def uses_new_api(repo: GitRepo) -> str:
    """A clean pick that is wrong for the branch: the fix calls a helper only main has."""
    base(repo)
    helper = "int clamp_value(int v) {\n    return v < 0 ? 0 : v;\n}\n"
    repo.commit("Add clamp_value helper (#40)", {"src/util.c": helper})
    repo.commit("Never return a negative from handle (#41)",
                {"src/server.c": fixed(SERVER, "return -1;", "return clamp_value(-1);")})
    return "#41"


def insertion_beside_missing_feature(repo: GitRepo) -> str:
    """The fix inserts a check right above an `else if` that a later feature (#30) added on main
    and the branch never got: git conflicts, and the fix's own preceding context places it."""
    base(repo)
    feature = fixed(SERVER, "        return -1;\n    }\n", "        return -1;\n    } else if (y == 0) {\n"
                    "        return -2;\n    }\n")
    repo.commit("Tell zero apart (#30)", {"src/server.c": feature})
    fix = fixed(feature, "    if (y > 10) {\n        return -1;\n", "    if (y > 10) {\n        return -1;\n"
                "    } else if (y < 0) {\n        return -3;\n")
    repo.commit("Refuse negative results (#31)", {"src/server.c": fix})
    return "#31"


def split_on_main(repo: GitRepo) -> str:
    """Main moved handle() out of server.c into its own file; the fix changes it there. The branch
    still has handle() in server.c, and git's rename detection cannot pair a split."""
    base(repo)
    handle = SERVER[SERVER.index("int handle"):SERVER.index("int main")]
    rest = SERVER.replace(handle, "int handle(int x);\n\n")
    repo.commit("Split handle out of server.c (#32)",
                {"src/server.c": rest, "src/handle.c": "#include <stdio.h>\n\n" + handle})
    repo.commit("Fix overflow in handle (#33)",
                {"src/handle.c": "#include <stdio.h>\n\n" + handle.replace("return -1;", "return 0;")})
    return "#33"


def tests_only_on_main(repo: GitRepo) -> str:
    """The fix changes the code and a test file that a feature (#34) added on main only."""
    base(repo)
    test = "#include \"server.h\"\n\nint test_limit(void) {\n    return handle(11) == -1;\n}\n"
    repo.commit("Add limit tests (#34)", {"tests/test_limit.c": test})
    repo.commit("Fix overflow in handle (#35)", {
        "src/server.c": fixed(SERVER, "return -1;", "return 0;"),
        "tests/test_limit.c": test.replace("== -1", "== 0")})
    return "#35"


def prerequisite_fix(repo: GitRepo) -> str:
    """The fix (#51) edits a line that an earlier fix (#50) changed; #50 was never backported."""
    base(repo)
    first = fixed(SERVER, "if (y > 10)", "if (y > 10 || y < -10)")
    repo.commit("Fix the lower bound in handle (#50)", {"src/server.c": first})
    repo.commit("Unrelated docs (#49)", {"README": "server docs\n"})
    repo.commit("Fix off-by-one in the bounds (#51)", {"src/server.c": fixed(first, "y > 10 ||", "y >= 10 ||")})
    return "#51"


ALL = {f.__name__: f for f in (clean, whitespace, context_moved, same_change, prerequisite, renamed,
                                deleted_on_target, merge_commit, multi_commit, uses_new_api,
                                insertion_beside_missing_feature, split_on_main, tests_only_on_main,
                                prerequisite_fix)}
