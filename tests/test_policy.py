"""Policy decisions that need a forge's labels, exercised on real Source values."""

from __future__ import annotations

from bot.engine.git import Git
from bot.engine.policy import needs_approval
from bot.engine.source import resolve
from tests import scenarios


def test_a_source_without_a_fix_label_needs_approval(repo):
    ref = scenarios.clean(repo)
    source = resolve(Git(repo.path), ref, "refs/heads/main")
    labels = ["bug", "security", "critical"]
    assert needs_approval(source, labels) is None  # no forge: the person who asked decides
    labelled = source.__class__(**{**source.__dict__, "labels": ("Bug", "backport/8.1")})
    assert needs_approval(labelled, labels) is None
    feature = source.__class__(**{**source.__dict__, "labels": ("enhancement",)})
    why = needs_approval(feature, labels)
    assert why is not None and "enhancement" in why and "bug, security, critical" in why


def test_every_commit_of_a_multi_commit_fix_is_found_by_patch_id(repo):
    """A three-commit fix cherry-picked onto the branch without -x (no trailer, no (#N)): each of
    its commits is present by equal patch. Its files were once listed with one `git diff-tree`
    over all three commits, which compares trees instead of listing each commit's files."""
    from bot.engine.policy import find_present

    scenarios.base(repo)
    repo.commit("Check the sum", {"src/server.c": scenarios.fixed(scenarios.SERVER, "return a + b;",
                                                                   "return a + b; /* checked */")})
    repo.commit("Document the server", {"README": "server, documented\n"})
    repo.commit("Add a changelog", {"CHANGES": "1.1: fixes\n"})
    picks = repo.git("rev-list", "--reverse", "main~3..main").split()
    repo.checkout("rel")
    repo.commit("Unrelated work on rel", {"NOTES": "rel\n"})
    for sha in picks:
        repo.git("cherry-pick", sha)
    git = Git(repo.path)
    source = resolve(git, "main~3..main", "refs/heads/main")
    found = find_present(git, source, "refs/heads/rel", "refs/heads/main")
    assert [(p.commit, p.how) for p in found] == [(sha, "patch-id") for sha in picks]
