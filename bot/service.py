"""The bot's brain: commands and reactions in, engine jobs and chat messages out.

One thread per request, one progress message per branch edited as the attempt moves through its
states, a summary when every branch is done. Work is queued in the store (so it survives a
restart) and run by a few asyncio workers; git work runs in threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot import commands as cmd
from bot import digest, pullrequest, report
from bot.engine import source as source_mod
from bot.engine.backport import Engine, Plan
from bot.engine.source import Source
from bot.errors import BackportFailure, BadInput, Internal
from bot.ports import APPROVAL_BUTTONS, LLM, Chat, Forge, Incoming, MessageRef, PullRequestDraft, Reaction
from bot.repos import Repo
from bot.states import FINISHED, WORKING, State
from bot.store import Attempt, Store

log = logging.getLogger(__name__)

APPROVE = {"✅", "✔️", "☑️", "white_check_mark", "heavy_check_mark", "ballot_box_with_check"}
REJECT = {"❌", "✖️", "x", "heavy_multiplication_x", "negative_squared_cross_mark"}
RETRY = {"🔁", "🔄", "repeat", "arrows_counterclockwise"}
# Still alive: a new request for the same fix and branch joins it instead of starting another.
OPEN = frozenset({State.REQUESTED, State.QUEUED, State.READY, State.AWAITING_APPROVAL, State.PR_OPEN}) | WORKING
QUEUED_TEXT = "⏳ {branch}: queued…"  # what report.progress shows for a queued attempt
DIGEST_WINDOW = "7 days ago"  # the first digest of a repository looks this far back
CHAT_LIMIT = 3000  # characters per message, under every chat's limit


def emoji_kind(emoji: str) -> str | None:
    name = emoji.strip().strip(":")
    if name in APPROVE:
        return "approve"
    if name in REJECT:
        return "reject"
    if name in RETRY:
        return "retry"
    return None


class Service:
    def __init__(self, *, repos: list[Repo], store: Store, engine: Engine, chat: Chat, forge: Forge,
                 maintainers: set[str], workers: int = 2, ci_poll_seconds: float = 60, llm: LLM | None = None) -> None:
        self.repos = {r.key: r for r in repos}
        self.store, self.engine, self.chat, self.forge = store, engine, chat, forge
        self.maintainers = maintainers
        self.workers = workers
        self.llm = llm
        self.alert_channel: str | None = None  # where security fixes are proposed at once
        self.batching = False  # ✅ on a non-security candidate adds it to its branches' batch
        self.ci_poll_seconds = ci_poll_seconds
        self.queue: asyncio.Queue[int] = asyncio.Queue()
        self._cancel: set[int] = set()
        self._refreshing: dict[int, asyncio.Task[None]] = {}
        self._dirty: set[int] = set()
        self._shown: dict[int, str] = {}  # last text of each progress message: skip edits that change nothing
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover from a previous run, resume queued work, start the workers."""
        self._loop = asyncio.get_running_loop()
        self.store.subscribe(self._on_transition)
        for repo in self.repos.values():
            try:
                await asyncio.to_thread(repo.workspace.fetch)
            except Exception:  # a remote that is down must not keep the bot from starting
                log.exception("could not fetch %s", repo.key)
        for attempt_id in await asyncio.to_thread(self.engine.recover):
            a = self.store.attempt(attempt_id)
            await self._reply_in_thread(a, f"⚠️ The backport to {a.branch} was interrupted ({a.reason}). "
                                           f"React 🔁 on its message or type `/backport retry {a.source} {a.branch}`.")
        for a in self.store.in_state(State.REQUESTED, State.QUEUED, State.READY):
            if a.repo in self.repos:
                self.queue.put_nowait(a.id)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        if any(r.verify == "ci" for r in self.repos.values()):
            self._tasks.append(asyncio.create_task(self._ci_poller(self.ci_poll_seconds)))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every queued job is done and every message is up to date."""
        await self.queue.join()
        while self._refreshing:
            await asyncio.gather(*list(self._refreshing.values()), return_exceptions=True)

    # --- commands --------------------------------------------------------------------------------

    async def handle(self, msg: Incoming) -> None:
        try:
            command = cmd.parse(msg.text)
        except cmd.ParseError as e:
            if not await self._free_question(msg):
                await self.chat.post(msg.channel, str(e), msg.thread)
            return
        if self.llm is not None and isinstance(command, cmd.Why) and "?" in msg.text:
            if await self._free_question(msg):  # a question in words: answered in words
                return
        try:
            await self._dispatch(command, msg)
        except BadInput as e:
            await self.chat.post(msg.channel, str(e), msg.thread)
        except BackportFailure as e:
            await self.chat.post(msg.channel, e.reason, msg.thread)

    async def _dispatch(self, command: cmd.Command, msg: Incoming) -> None:
        say: Callable[[str], Awaitable[MessageRef]] = lambda text: self.chat.post(msg.channel, text, msg.thread)  # noqa: E731
        if isinstance(command, cmd.Help):
            await say(cmd.HELP)
        elif isinstance(command, cmd.Digest):
            await self.post_digest(self.repo_for(msg.channel), msg.channel, msg.thread)
        elif isinstance(command, cmd.Batch):
            await self._batch_command(command, msg)
        elif isinstance(command, cmd.Landed):
            repo = self.repo_for(msg.channel)
            await say(await asyncio.to_thread(self._landed, repo, repo.branch(command.branch)[0]))
        elif isinstance(command, cmd.Stats):
            await say(report.stats(self.store))
        elif isinstance(command, cmd.Backport):
            await self._backport(command, msg)
        else:
            repo = self.repo_for(msg.channel)
            key = await asyncio.to_thread(repo.source_key, command.ref)
            if isinstance(command, cmd.Status):
                await asyncio.to_thread(repo.workspace.fetch)
                source = await asyncio.to_thread(self._resolve, repo, key)
                await say(await asyncio.to_thread(report.status, self.store, repo, source))
            elif isinstance(command, cmd.Why):
                await say(report.why(self.store, repo.key, key, repo.branch(command.branch)[0]))
            elif isinstance(command, cmd.Retry):
                self._require_maintainer(msg, "retry backports")
                await say(await self._retry(repo, key, repo.branch(command.branch)[0], msg.user))
            elif isinstance(command, cmd.Cancel):
                self._require_maintainer(msg, "cancel backports")
                await say(await self._cancel_attempt(repo, key, repo.branch(command.branch)[0], msg.user))

    async def _free_question(self, msg: Incoming) -> bool:
        """"What did the bot change in the 8.0 backport of 1234?": answered from the stored record
        (by the LLM when one is configured, citing it; else the template answer)."""
        try:
            repo = self.repo_for(msg.channel)
        except BadInput:
            return False
        ref = re.search(r"(?<![\w/])#?(\d{1,6})\b|\b([0-9a-f]{7,40})\b", msg.text)
        names = sorted(repo.branches, key=len, reverse=True)
        branch = next((b for b in names if re.search(rf"(?<![\w.]){re.escape(b)}(?![\w])", msg.text)), None)
        if ref is None or branch is None:
            return False
        key = await asyncio.to_thread(repo.source_key, ref.group(1) or ref.group(2))
        display = repo.branch(branch)[0]
        facts = report.why(self.store, repo.key, key, display)
        attempt = self.store.latest(repo.key, key, display)
        if self.llm is None or attempt is None:
            await self.chat.post(msg.channel, facts, msg.thread)
            return True
        facts += "\n" + "\n".join(f"Hunk {h.path}:{h.detail.get('line', '?')} resolved by {h.resolved_by}: "
                                   f"{h.detail.get('resolution', '')[:800]}" for h in self.store.hunks(attempt.id))
        try:
            text, usage = await asyncio.to_thread(self.llm.answer, msg.text, facts)
        except Exception:
            log.exception("the LLM could not answer")
            text = ""
        if not text:
            await self.chat.post(msg.channel, facts, msg.thread)
            return True
        used = dict(attempt.llm_usage)
        self.store.update(attempt.id, llm={k: used.get(k, 0) + v for k, v in dataclasses.asdict(usage).items()})
        await self.chat.post(msg.channel, f"{text}\n_(answered by the LLM from the stored record of attempt "
                                          f"{attempt.id})_", msg.thread)
        return True

    def repo_for(self, channel: str) -> Repo:
        if len(self.repos) == 1 and not channel.startswith("github:"):
            return next(iter(self.repos.values()))
        for repo in self.repos.values():
            if channel == repo.key or channel in repo.channels or (
                    repo.github and channel.startswith(f"github:{repo.github}#")):
                return repo
        raise BadInput(f"this channel is not linked to a repository; configured: {', '.join(self.repos)}")

    def _require_maintainer(self, msg: Incoming, what: str) -> None:
        allowed = msg.maintainer if msg.maintainer is not None else msg.user in self.maintainers
        if not allowed:
            who = ", ".join(sorted(self.maintainers)) if msg.maintainer is None else "people with write access"
            raise BadInput(f"Sorry {msg.user}, only maintainers can {what} ({who}).")

    def _resolve(self, repo: Repo, key: str) -> Source:
        """The fix as the forge knows it. No fetch here: callers fetch once per request."""
        source = self.forge.resolve(repo, key) or source_mod.resolve(repo.workspace.git, key, repo.main_ref)
        info = self.forge.source_info(repo, source)
        return dataclasses.replace(source, labels=info.labels, author=info.author)

    async def _backport(self, command: cmd.Backport, msg: Incoming) -> None:
        self._require_maintainer(msg, "request backports")
        repo = self.repo_for(msg.channel)
        await asyncio.to_thread(repo.workspace.fetch)
        branches = repo.expand(list(command.branches))  # unknown branch: BadInput listing the valid ones
        key = await asyncio.to_thread(repo.source_key, command.ref)
        failure: BackportFailure | None = None
        try:
            source: Source | None = await asyncio.to_thread(self._resolve, repo, key)
            title = f"{source.key if source.key.startswith('#') else source.key[:10]} {source.title}"
        except BackportFailure as f:
            source, failure, title = None, f, command.ref
        key = source.key if source else key
        fresh, notes = [], []
        for branch in branches:
            current = self.store.latest(repo.key, key, branch)
            if current and State(current.state) in OPEN:
                where = f" ({current.pr_url})" if current.pr_url else ""
                notes.append(f"{branch}: already {current.state.replace('_', ' ')}{where}; not starting a second one.")
            else:
                fresh.append(branch)
        if not fresh:
            await self.chat.post(msg.channel, f"Backport of {title}: " + " ".join(notes), msg.thread)
            return
        root = await self.chat.post(msg.channel, f"Backport of {title} to {', '.join(fresh)}, "
                                                 f"requested by {msg.user}.", msg.thread)
        thread = root.thread or root.id
        request = self.store.add_request(repo.key, key, fresh, msg.user, "chat", msg.channel, thread)
        for text in notes:
            await self.chat.post(msg.channel, text, thread)
        for branch in fresh:
            attempt = self.store.add_attempt(request, repo.key, key, branch)
            note = await self.chat.post(msg.channel, QUEUED_TEXT.format(branch=branch), thread)
            self._shown[attempt] = QUEUED_TEXT.format(branch=branch)
            self.store.update(attempt, message=note.id)
            if failure is not None:
                self.engine.fail(attempt, failure)
                continue
            self.store.transition(attempt, State.QUEUED)
            self.queue.put_nowait(attempt)

    async def _retry(self, repo: Repo, key: str, branch: str, user: str) -> str:
        current = self.store.latest(repo.key, key, branch)
        if current is None:
            return f"Nothing to retry: {key} was never backported to {branch}. Try `/backport {key} to {branch}`."
        if State(current.state) not in FINISHED and current.state != State.AWAITING_APPROVAL:
            return f"The backport of {key} to {branch} is still {current.state.replace('_', ' ')}."
        if current.state == State.AWAITING_APPROVAL:
            self.store.transition(current.id, State.CANCELLED, {"by": user, "reason": "retried"})
        request = self.store.request(current.request_id)
        attempt = self.store.add_attempt(current.request_id, repo.key, key, branch)
        note = await self.chat.post(request["channel"] or "", QUEUED_TEXT.format(branch=branch), request["thread"])
        self._shown[attempt] = QUEUED_TEXT.format(branch=branch)
        self.store.update(attempt, message=note.id)
        self.store.transition(attempt, State.QUEUED, {"retry_of": current.id, "by": user})
        self.queue.put_nowait(attempt)
        return f"Retrying the backport of {key} to {branch} (see the request's thread)."

    async def _cancel_attempt(self, repo: Repo, key: str, branch: str, user: str) -> str:
        current = self.store.latest(repo.key, key, branch)
        if current is None or State(current.state) in FINISHED or current.state == State.PR_OPEN:
            state = current.state.replace("_", " ") if current else "never requested"
            return f"Nothing to cancel for {key} on {branch} ({state})."
        if State(current.state) in WORKING or current.state == State.READY:
            self._cancel.add(current.id)
            return f"The backport of {key} to {branch} will stop after its current step."
        await asyncio.to_thread(self._discard, current)
        self.store.transition(current.id, State.CANCELLED, {"by": user})
        return f"Cancelled the backport of {key} to {branch}."

    # --- the candidate digest ------------------------------------------------------------------------

    async def post_digest(self, repo: Repo, channel: str, thread: str | None = None) -> int:
        """Post the digest: a first message, then one reply per candidate to react on."""
        last = self.store.last_digest(repo.key)
        await asyncio.to_thread(repo.workspace.fetch)
        head = repo.workspace.git.out("rev-parse", repo.main_ref)
        candidates = await asyncio.to_thread(digest.find, repo, last["head"] if last else DIGEST_WINDOW, None,
                                             self.store.dismissed(repo.key))
        if self.llm is not None:  # the model only re-ranks; the rules decided what is a candidate
            candidates = await asyncio.to_thread(self._rank_with_llm, repo, candidates)
        missing = await asyncio.to_thread(lambda: sum(len(self._missing(repo, b)) for b in repo.release_branches()))
        root = None
        for part in digest.split(digest.render(candidates, repo.key, missing), CHAT_LIMIT):
            posted = await self.chat.post(channel, part, thread)
            root = root or posted
        assert root is not None
        replies_in = thread or root.id
        for cand in candidates:
            note = await self.chat.post(channel, cand.line()[:CHAT_LIMIT], replies_in)
            self.store.add_candidate(note.id, repo.key, cand.key, cand.commit, cand.suggested, channel, replies_in,
                                     cand.security)
        self.store.add_digest(repo.key, head, channel, root.id, len(candidates))
        return len(candidates)

    def _rank_with_llm(self, repo: Repo, candidates: list[digest.Candidate]) -> list[digest.Candidate]:
        assert self.llm is not None
        flagged: set[str] = set()
        for cand in candidates:
            message = repo.workspace.git.out("log", "-1", "--format=%B", cand.commit)
            verdict = self.llm.classify(cand.title, message)
            cand.reasons.append(f"LLM: {verdict.reason}")
            if verdict.is_security:
                flagged.add(cand.key)
        return sorted(candidates, key=lambda c: (not c.security, c.key not in flagged, c.risk))

    async def propose(self, repo: Repo, key: str, channel: str) -> None:
        """The security fast path: one merged fix proposed at once, not at the next digest."""
        git = repo.workspace.git
        await asyncio.to_thread(repo.workspace.fetch)
        source = await asyncio.to_thread(self._resolve, repo, key)
        commit = source.commits[-1].sha
        found = await asyncio.to_thread(digest.find, repo, f"{commit}~1" if git.rev(f"{commit}~1") else None)
        cand = next((c for c in found if c.commit == commit), None)
        if cand is None:
            return
        note = await self.chat.post(channel, "🔒 A security fix was just merged: " + cand.line()
                                    + ". React ✅ to backport it, ❌ to dismiss it.")
        self.store.add_candidate(note.id, repo.key, cand.key, cand.commit, cand.suggested, channel, None, True)

    async def _candidate_reaction(self, cand: dict[str, Any], kind: str, user: str, message: MessageRef) -> None:
        repo = self.repos[cand["repo"]]
        channel, thread = cand["channel"], cand["thread"]
        if kind == "approve" and self.batching and not cand.get("security"):
            added = [b for b in cand["branches"] if self.store.add_to_batch(repo.key, b, cand["key"], user)]
            where = ", ".join(added) or "nothing new"
            await self.chat.post(channel, f"{cand['key']} joins the next batch for {where} (approved by {user}).",
                                 thread)
        elif kind == "approve":
            await self.handle(Incoming(user, f"/backport {cand['key']} to {' '.join(cand['branches'])}",
                                       channel, thread, maintainer=True))
        elif kind == "reject":
            self.store.dismiss(repo.key, cand["key"], user)
            await self.chat.post(channel, f"{cand['key']} dismissed by {user}; it will not be proposed again.",
                                 thread)
        else:
            commit = cand["commit"]
            found = await asyncio.to_thread(digest.find, repo, f"{commit}~1")
            fresh = next((c for c in found if c.commit == commit), None)
            text = fresh.line() if fresh else f"{cand['key']}: every release branch has it now."
            await self.chat.update(MessageRef(channel, message.id, thread), text)
            if fresh:
                self.store.add_candidate(message.id, repo.key, fresh.key, commit, fresh.suggested, channel, thread,
                                         fresh.security)

    # --- batches (a weekly sweep: one branch and one PR per release branch) ----------------------------

    async def _batch_command(self, command: cmd.Batch, msg: Incoming) -> None:
        repo = self.repo_for(msg.channel)
        if command.branch is None:
            pending = self.store.batch(repo.key)
            lines = [f"  {i['branch']}: {i['key']} (added by {i['added_by']})" for i in pending]
            await self.chat.post(msg.channel, "Pending batch items:\n" + "\n".join(lines) if lines
                                 else "No batch items are pending.", msg.thread)
            return
        self._require_maintainer(msg, "change batches")
        branch = repo.branch(command.branch)[0]
        if command.drop is not None:
            key = await asyncio.to_thread(repo.source_key, command.drop)
            items = [i for i in self.store.batch(repo.key, branch) if i["key"] == key]
            for item in items:
                self.store.set_batch_item(item["id"], "dropped", f"dropped by {msg.user}")
            text = (f"{key} is out of the {branch} batch." if items else f"{key} is not in the pending {branch} batch.")
            await self.chat.post(msg.channel, text, msg.thread)
            return
        await self.build_batch(repo, branch, msg.channel, msg.thread, msg.user)

    async def build_batch(self, repo: Repo, branch: str, channel: str, thread: str | None, user: str) -> None:
        """Pick every pending item onto one branch, in order. An item that fails is skipped and
        reported; it never blocks the others. Then one PR with Applied / Needs attention / Skipped."""
        items = self.store.batch(repo.key, branch)
        if not items:
            await self.chat.post(channel, f"No batch items are pending for {branch}.", thread)
            return
        root = await self.chat.post(channel, f"Building the {branch} batch: {len(items)} items.", thread)
        await asyncio.to_thread(repo.workspace.fetch)
        replies = thread or root.id
        _, ref = repo.branch(branch)
        head = await asyncio.to_thread(repo.workspace.git.out, "rev-parse", ref)
        request = self.store.add_request(repo.key, "batch", [branch], user, "batch", channel, replies)
        applied: list[tuple[dict[str, Any], Attempt]] = []
        skipped: list[tuple[dict[str, Any], str]] = []
        for item in items:
            attempt_id = self.store.add_attempt(request, repo.key, item["key"], branch)
            try:
                source = await asyncio.to_thread(self._resolve, repo, item["key"])
                plan = Plan(repo.workspace, source, branch, head, repo.main_ref, repo.local_commands, repo.fix_labels)
                await asyncio.to_thread(self.engine.run, attempt_id, plan)
            except BackportFailure as f:
                self.engine.fail(attempt_id, f)
            a = self.store.attempt(attempt_id)
            if a.state == State.READY and a.result_commit:
                head = a.result_commit
                applied.append((item, a))
                self.store.set_batch_item(item["id"], "applied")
                await asyncio.to_thread(self._discard, a)  # the batch branch carries it
            else:
                skipped.append((item, a.reason or a.state))
                self.store.set_batch_item(item["id"], "skipped", a.reason)
                await self.chat.post(channel, f"❌ {item['key']} skipped: {a.reason}", replies)
        if not applied:
            await self.chat.post(channel, f"Nothing in the {branch} batch applied; no PR.", replies)
            return
        batch_branch = f"backport/batch-{branch}-{time.strftime('%Y%m%d-%H%M%S')}"
        await asyncio.to_thread(repo.workspace.update_branch, batch_branch, head)
        draft = PullRequestDraft(
            title=f"[Backport {branch}] Batch of {len(applied)} fixes", body=pullrequest.batch_body(applied, skipped),
            head=batch_branch, base=repo.branches[branch], labels=("backport",), source="batch",
            draft=repo.verify == "ci")
        try:
            pr = await asyncio.to_thread(self.forge.open_pull_request, repo, draft)
        except BackportFailure as f:
            await self.chat.post(channel, f"❌ the {branch} batch PR could not be opened: {f.reason}", replies)
            return
        for _, a in applied:
            self.store.transition(a.id, State.PR_OPEN, {"pr": pr.number, "url": pr.url, "batch": batch_branch},
                                  pr_url=pr.url, backport_pr=pr.number, stage="pr_open")
        await self.chat.post(channel, f"✅ {branch} batch PR opened: {pr.url} ({len(applied)} applied, "
                                      f"{len(skipped)} skipped)", replies)

    def _missing(self, repo: Repo, branch: str) -> list[tuple[str, str]]:
        requested = {a.source: a.state.replace("_", " ") for a in self.store.attempts(repo.key, branch=branch)}
        return digest.not_landed(repo, requested, branch)

    def _landed(self, repo: Repo, branch: str) -> str:
        missing = self._missing(repo, branch)
        if not missing:
            return f"Every fix requested or labelled for {branch} is on {branch}."
        lines = [f"Not on {branch} yet ({len(missing)}):"]
        lines += [f"  {what} — {how}" for what, how in missing]
        return "\n".join(lines)

    # --- reactions -------------------------------------------------------------------------------

    async def react(self, reaction: Reaction) -> None:
        kind = emoji_kind(reaction.emoji)
        cand = self.store.candidate(reaction.message.id) if kind else None
        allowed = reaction.maintainer if reaction.maintainer is not None else reaction.user in self.maintainers
        if cand is not None and kind is not None:
            if not allowed:
                await self.chat.notify(cand["channel"], reaction.user, "only maintainers' reactions count "
                                       f"({', '.join(sorted(self.maintainers))}); yours was ignored.", cand["thread"])
                return
            await self._candidate_reaction(cand, kind, reaction.user, reaction.message)
            return
        attempt = self.store.by_message(reaction.message.id) if kind else None
        if attempt is None or kind is None:
            return  # not a reaction the bot acts on
        if not allowed:
            request = self.store.request(attempt.request_id)
            await self.chat.notify(request["channel"] or reaction.message.channel, reaction.user,
                                   f"only maintainers' reactions count ({', '.join(sorted(self.maintainers))}); "
                                   "yours was ignored.", request["thread"])
            return
        repo = self.repos.get(attempt.repo)
        if repo is None:
            return
        if kind == "approve":
            if attempt.state != State.AWAITING_APPROVAL:
                await self._reply_in_thread(attempt, f"{attempt.branch}: nothing waits for approval "
                                                     f"(it is {attempt.state.replace('_', ' ')}).")
                return
            self.store.note(attempt.id, {"approved_by": reaction.user})
            self.store.transition(attempt.id, State.READY, {"approved_by": reaction.user})
            self.queue.put_nowait(attempt.id)
        elif kind == "reject":
            await self._reply_in_thread(attempt, await self._cancel_attempt(repo, attempt.source, attempt.branch,
                                                                            reaction.user))
        else:
            await self._reply_in_thread(attempt, await self._retry(repo, attempt.source, attempt.branch,
                                                                   reaction.user))

    # --- the work --------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            attempt_id = await self.queue.get()
            try:
                await self._process(attempt_id)
            except Exception as exc:  # never silent: the attempt records what happened
                log.exception("attempt %s", attempt_id)
                self.engine.fail(attempt_id, Internal(f"{type(exc).__name__}: {exc}"))
            finally:
                self.queue.task_done()

    async def _process(self, attempt_id: int) -> None:
        a = self.store.attempt(attempt_id)
        repo = self.repos[a.repo]
        if a.state in (State.REQUESTED, State.QUEUED):
            try:
                source = await asyncio.to_thread(self._resolve, repo, a.source)
            except BackportFailure as f:
                self.engine.fail(attempt_id, f)
                return
            display, ref = repo.branch(a.branch)
            plan = Plan(repo.workspace, source, display, ref, repo.main_ref, repo.local_commands, repo.fix_labels)
            await asyncio.to_thread(self.engine.run, attempt_id, plan)
            a = self.store.attempt(attempt_id)
        if a.state != State.READY:
            return
        if attempt_id in self._cancel:
            self._cancel.discard(attempt_id)
            await asyncio.to_thread(self._discard, a)
            self.store.transition(attempt_id, State.CANCELLED, {"reason": "cancelled while running"})
            return
        approved = any("approved_by" in e.detail for e in self.store.events(attempt_id))
        if a.needs_approval and not approved:
            self.store.transition(attempt_id, State.AWAITING_APPROVAL, {"why": a.warnings})
            reasons = "; ".join(a.warnings) or "policy"
            note = await self._reply_in_thread(
                a, f"✋ {a.branch}: waiting for a maintainer's approval: {reasons}. "
                   f"React ✅ to open the PR, ❌ to cancel, 🔁 to retry.", buttons=APPROVAL_BUTTONS)
            if note:
                self.store.update(attempt_id, approval_message=note.id)
            return
        await asyncio.to_thread(self._open_pr, repo, a)

    def _open_pr(self, repo: Repo, a: Attempt) -> None:
        self.store.transition(a.id, State.OPENING_PR)
        try:
            existing = self.forge.find_open(repo, a.result_branch or "")
            if existing is None:
                source = self._resolve(repo, a.source)
                request = self.store.request(a.request_id)
                draft = pullrequest.draft(repo.workspace.git, self.store, self.store.attempt(a.id), source,
                                          repo.branches[a.branch], request["requested_by"])
                if repo.verify == "ci":
                    draft = dataclasses.replace(draft, draft=True)
                pr = self.forge.open_pull_request(repo, draft)
            else:
                pr = existing
        except BackportFailure as f:
            self.engine.fail(a.id, f)
            return
        self.store.transition(a.id, State.PR_OPEN, {"pr": pr.number, "url": pr.url, "reused": existing is not None},
                              pr_url=pr.url, stage="pr_open", backport_pr=pr.number,
                              ci="waiting" if repo.verify == "ci" else None)

    # --- verification on the forge's CI --------------------------------------------------------------

    async def check_ci(self, attempt_id: int) -> None:
        """Look at the checks of a draft backport PR: report them, and mark the PR ready for review
        when all pass or fail the attempt with the failing check's link."""
        a = self.store.attempt(attempt_id)
        repo = self.repos.get(a.repo)
        if repo is None or a.ci != "waiting" or a.state != State.PR_OPEN or a.backport_pr is None:
            return
        checks = await asyncio.to_thread(self.forge.checks, repo, a.backport_pr)
        if checks.failed:
            name, link = checks.failed[0]
            self.store.transition(attempt_id, State.FAILED, {"stage": "ci", "kind": "verify", "checks": checks.failed},
                                  ci="failed", stage="ci", failure_kind="verify",
                                  reason=f"the CI check `{name}` failed on {a.pr_url}: {link}")
            await self._reply_in_thread(a, f"❌ {a.branch}: CI check `{name}` failed: {link}")
        elif checks.passed and not checks.pending:
            await asyncio.to_thread(self.forge.mark_ready, repo, a.backport_pr)
            self.store.update(attempt_id, ci="passed")
            self.store.note(attempt_id, {"ci": "passed", "checks": list(checks.passed)})
            self._schedule_refresh(attempt_id)
            await self._reply_in_thread(a, f"✅ {a.branch}: all {len(checks.passed)} CI checks passed; "
                                           f"{a.pr_url} is ready for review.")

    async def on_pr_closed(self, repo_key: str, head_branch: str, merged: bool) -> None:
        """A backport PR was merged or closed on the forge: the attempt's life ends there."""
        for a in self.store.in_state(State.PR_OPEN):
            if a.repo == repo_key and a.result_branch == head_branch:
                self.store.transition(a.id, State.MERGED if merged else State.CLOSED, {"on_forge": True},
                                      stage="merged" if merged else "closed")

    async def on_ci_event(self, repo_key: str, head_branch: str) -> None:
        """A webhook said checks changed on a branch: look at the attempts that own it."""
        for a in self.store.in_state(State.PR_OPEN):
            if a.repo == repo_key and a.result_branch == head_branch and a.ci == "waiting":
                await self.check_ci(a.id)

    async def _ci_poller(self, every: float) -> None:
        """The fallback when webhooks do not arrive."""
        while True:
            await asyncio.sleep(every)
            for a in self.store.in_state(State.PR_OPEN):
                if a.ci == "waiting":
                    try:
                        await self.check_ci(a.id)
                    except Exception:
                        log.exception("could not read the CI checks of attempt %s", a.id)

    def _discard(self, a: Attempt) -> None:
        """Delete a result branch nobody will use (cancelled): nothing is left half-done."""
        repo = self.repos.get(a.repo)
        if repo and a.result_branch and a.result_commit:
            repo.workspace.git.run("update-ref", "-d", f"refs/heads/{a.result_branch}", a.result_commit, check=False)

    # --- messages --------------------------------------------------------------------------------

    def _on_transition(self, attempt_id: int, state: State, detail: dict[str, Any]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule_refresh, attempt_id)

    def _schedule_refresh(self, attempt_id: int) -> None:
        if attempt_id in self._refreshing:
            self._dirty.add(attempt_id)  # coalesce: one more edit after the one in flight
            return
        self._refreshing[attempt_id] = asyncio.create_task(self._refresh(attempt_id))

    async def _refresh(self, attempt_id: int) -> None:
        try:
            while True:
                self._dirty.discard(attempt_id)
                a = self.store.attempt(attempt_id)
                request = self.store.request(a.request_id)
                text = report.progress(a)
                if a.message and self._shown.get(attempt_id) != text:
                    self._shown[attempt_id] = text
                    await self.chat.update(MessageRef(request["channel"] or "", a.message, request["thread"]), text)
                if attempt_id not in self._dirty:
                    break
            await self._summarize(a.request_id)
        except Exception:
            log.exception("could not update the message of attempt %s", attempt_id)
        finally:
            self._refreshing.pop(attempt_id, None)

    async def _summarize(self, request_id: int) -> None:
        request = self.store.request(request_id)
        latest: dict[str, Attempt] = {}
        for a in self.store.attempts(request["repo"], request["source"]):
            if a.request_id == request_id:
                latest[a.branch] = a
        if not latest or any(State(a.state) not in FINISHED | {State.PR_OPEN, State.AWAITING_APPROVAL}
                             for a in latest.values()):
            return
        text = report.summary(list(latest.values()))
        if text != request.get("summary"):
            self.store.update_request(request_id, summary=text)
            await self.chat.post(request["channel"] or "", text, request["thread"])
            await self._report_on_source(request, list(latest.values()), text)

    async def _report_on_source(self, request: dict[str, Any], attempts: list[Attempt], summary: str) -> None:
        """Never silent on the forge either: the source PR hears how its backports went."""
        repo = self.repos.get(request["repo"])
        if repo is None or (request.get("channel") or "").startswith(f"github:{repo.github}#"):
            return  # asked on the PR itself: the answer is already there
        body = "\n".join(["Backports requested by " + request["requested_by"] + ":",
                           *(f"- {report.progress(a)}" for a in attempts), "", summary])
        try:
            await asyncio.to_thread(self.forge.comment_on_source, repo, request["source"], body)
        except Exception:
            log.exception("could not report on the source of request %s", request["id"])

    async def _reply_in_thread(self, a: Attempt, text: str, buttons: tuple[str, ...] = ()) -> MessageRef | None:
        request = self.store.request(a.request_id)
        if request.get("channel") is None:
            return None  # a request from the CLI: no chat thread to answer in
        return await self.chat.post(request["channel"], text, request["thread"], buttons)
