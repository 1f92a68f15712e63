"""Features one at a time, without the dispatcher: each is given a Context of real parts (a SQLite
store, the workflow, the engine, the local forge) and the console chat writing to memory."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from adapters.chat.console import ConsoleChat
from adapters.forge.local import LocalForge
from adapters.store.sqlite import SQLiteStore
from bot.core import grammar
from bot.core.context import Context, Settings
from bot.core.features.approvals import Approvals
from bot.core.features.backports import Backports
from bot.core.features.progress import Progress
from bot.core.features.questions import Questions
from bot.core.ports import Incoming, MessageRef, Reaction
from bot.core.repos import from_path
from bot.core.workflow import State, Workflow
from bot.engine.backport import Engine, Outcome
from tests import scenarios
from tests.gitrepo import GitRepo


def context(repo: GitRepo, data_dir: Path) -> tuple[Context, io.StringIO]:
    out = io.StringIO()
    store = SQLiteStore(data_dir / "backportbot.db")
    target = from_path(repo.path, data_dir)
    ctx = Context({target.key: target}, store, Workflow(store, "test"), Engine(), ConsoleChat(out), LocalForge(store),
                  Settings(frozenset({"ada"})))
    return ctx, out


def test_questions_alone(repo, data_dir):
    scenarios.clean(repo)
    ctx, out = context(repo, data_dir)
    asyncio.run(Questions(ctx).command(grammar.Help(), Incoming("bob", "/backport help", "console")))
    asyncio.run(Questions(ctx).command(grammar.Stats(), Incoming("bob", "/backport stats", "console")))
    assert "/backport 1234 to 8.1" in out.getvalue() and "No backports yet." in out.getvalue()


def test_approvals_alone(repo, data_dir):
    scenarios.clean(repo)
    ctx, out = context(repo, data_dir)
    key = next(iter(ctx.repos))
    request = ctx.store.add_request(key, "#12", ["rel"], "ada", "chat", "console", "1")
    attempt = ctx.store.add_attempt(request, key, "#12", "rel")
    ctx.workflow.queue(attempt)
    ctx.workflow.start(attempt, {})
    ctx.workflow.finish(attempt, Outcome(result_branch="backport/12-to-rel", result_commit=repo.head("main"),
                                         warnings=["the source is not labelled as a fix"]))
    ctx.workflow.await_approval(attempt, ["the source is not labelled as a fix"])
    ctx.store.set_message(attempt, approval_message="7")
    backports = Backports(ctx, Progress(ctx))
    approvals = Approvals(ctx, backports)

    async def react(user: str) -> bool:
        return await approvals.reaction("approve", Reaction(user, "✅", MessageRef("console", "7")))

    assert asyncio.run(react("bob"))
    assert "(only bob sees this) only maintainers' reactions count (ada)" in out.getvalue()
    assert ctx.store.attempt(attempt).state == State.AWAITING_APPROVAL
    assert asyncio.run(react("ada"))
    a = ctx.store.attempt(attempt)
    assert (a.state, a.approved_by) == (State.READY, "ada")
    assert backports.queue.get_nowait() == attempt  # queued again to open its pull request
    assert not asyncio.run(approvals.reaction("approve", Reaction("ada", "✅", MessageRef("console", "99"))))


def test_a_number_inside_a_branch_name_is_not_a_pull_request(repo, data_dir):
    scenarios.clean(repo)
    repo.branch("8.0")
    ctx, out = context(repo, data_dir)
    asked = Incoming("bob", "what happened to the 8.0 backport of 12?", "console")
    assert asyncio.run(Questions(ctx).in_words(asked))
    assert "No backport of #12 to 8.0 has been attempted." in out.getvalue()
    assert not asyncio.run(Questions(ctx).in_words(Incoming("bob", "how is 8.0 doing?", "console")))
