"""The attempt's workflow: every move the table allows works from each of its states, every other
move is refused by the store (state and event log untouched), and the diagram in the docs is
the table's."""

from __future__ import annotations

import itertools
from collections import deque
from pathlib import Path

import pytest

from adapters.store.sqlite import SQLiteStore
from bot.core.workflow import FINISHED, MOVES, TRANSITIONS, IllegalMove, Move, Op, State, Workflow, mermaid

ROOT = Path(__file__).parent.parent


def path_to(state: State) -> list[Op]:
    """The shortest list of moves from a new attempt to `state`."""
    seen, todo = {State.REQUESTED: []}, deque([State.REQUESTED])
    while todo:
        here = todo.popleft()
        for op, (sources, target) in MOVES.items():
            if here in sources and target not in seen:
                seen[target] = [*seen[here], op]
                todo.append(target)
    return seen[state]


FIXES = itertools.count(1)


def attempt_in(store: SQLiteStore, state: State) -> int:
    fix = f"#{next(FIXES)}"  # one open attempt per fix and branch: each test attempt is another fix
    request = store.add_request("demo", fix, ["rel"], "ada", "test")
    attempt = store.add_attempt(request, "demo", fix, "rel")
    for op in path_to(state):
        store.move(attempt, Move(op, *MOVES[op]))
    assert store.attempt(attempt).state == state
    return attempt


def test_every_state_is_reachable_and_only_finished_states_are_final():
    for state in State:
        path_to(state)  # raises KeyError when unreachable
    leaving = {source for source, _ in TRANSITIONS}
    assert leaving | FINISHED == set(State)
    assert not leaving & FINISHED


@pytest.mark.parametrize("op", sorted(MOVES))
def test_each_allowed_move_from_each_of_its_states(tmp_path, op):
    store = SQLiteStore(tmp_path / "db.sqlite")
    sources, target = MOVES[op]
    for source in sorted(sources):
        attempt = attempt_in(store, source)
        moved = store.move(attempt, Move(op, sources, target, {"why": "test"}))
        assert moved.state == target
        last = store.events(attempt)[-1]
        assert (last.op, last.state, last.detail) == (op, target, {"why": "test"})


@pytest.mark.parametrize("state", sorted(State))
def test_every_other_move_is_refused(tmp_path, state):
    store = SQLiteStore(tmp_path / "db.sqlite")
    for op, (sources, target) in MOVES.items():
        if state in sources:
            continue
        attempt = attempt_in(store, state)
        events = store.events(attempt)
        with pytest.raises(IllegalMove, match=f"cannot {op.value.replace('_', ' ')}"):
            store.move(attempt, Move(op, sources, target))
        assert store.attempt(attempt).state == state
        assert store.events(attempt) == events


def test_a_move_writes_only_known_columns(tmp_path):
    store = SQLiteStore(tmp_path / "db.sqlite")
    attempt = attempt_in(store, State.REQUESTED)
    with pytest.raises(ValueError, match="state"):
        store.move(attempt, Move(Op.QUEUE, *MOVES[Op.QUEUE], columns={"state": "merged"}))


def test_named_operations_persist_approval_and_cancel_requests(tmp_path):
    store = SQLiteStore(tmp_path / "db.sqlite")
    workflow = Workflow(store, "test")
    waiting = attempt_in(store, State.AWAITING_APPROVAL)
    assert workflow.approve(waiting, "ada").approved_by == "ada"
    running = attempt_in(store, State.VERIFYING)
    workflow.request_cancel(running, "bob")
    again = SQLiteStore(tmp_path / "db.sqlite")  # another process, or after a restart
    assert again.attempt(running).cancel_requested_by == "bob"
    assert again.attempt(running).state == State.VERIFYING
    assert [e.op for e in again.events(running)][-1] == Op.CANCEL_REQUESTED


def test_the_diagram_in_the_docs_is_the_table():
    doc = (ROOT / "docs" / "workflow.md").read_text()
    assert "```mermaid\n" + mermaid() + "```" in doc, "regenerate it: python -m bot.core.workflow"
