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
