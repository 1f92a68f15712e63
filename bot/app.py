"""The composition root: the only module that imports adapters. It reads the secrets once, builds
the store, the engine, the chat and forge adapters the config names (by default: console chat,
local forge, SQLite, no model), the core around them, and the servers `serve` runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import openai
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from adapters.chat import discord as discord_chat
from adapters.chat import slack as slack_chat
from adapters.chat.console import Console, ConsoleChat
from adapters.chat.router import ChatRouter
from adapters.forge.github import Credentials, GitHubCommentChat, GitHubForge
from adapters.forge.github_git import GitAuth
from adapters.forge.local import LocalForge
from adapters.llm.openai import OpenAIModel
from adapters.sandbox import bubblewrap, container
from adapters.sandbox.bubblewrap import Bubblewrap
from adapters.sandbox.container import Container
from adapters.sandbox.process import ProcessSandbox
from adapters.schedule.cron import DigestSchedule
from adapters.store.sqlite import SQLiteStore
from bot import config as config_mod
from bot.core import reports
from bot.core.context import Context, Settings
from bot.core.dispatcher import Dispatcher
from bot.core.features.backports import run_attempt
from bot.core.features.digest import FIRST_WINDOW_DAYS
from bot.core.lease import Keeper
from bot.core.ports import LLM, AlreadyOpen, Chat
from bot.core.repos import Repo, from_path
from bot.core.workflow import Attempt, State, Workflow
from bot.engine import candidates as candidates_mod
from bot.engine import digest_eval
from bot.engine import evaluate as evaluate_mod
from bot.engine import source as source_mod
from bot.engine.backport import Engine
from bot.engine.candidates import PROPOSED, Candidate
from bot.engine.errors import BackportFailure, BadInput
from bot.engine.ports import Command
from bot.engine.source import Source
from bot.engine.workspace import Auth, Workspace
from bot.secrets import Redactor, Secrets, value, without_secrets

if TYPE_CHECKING:
    from adapters.forge import github_webhook

Stop = Callable[[], Awaitable[None]]
GITHUB_MAX_BODY = 25 * 1024 * 1024  # GitHub caps a webhook payload at 25 MB (Slack's route checks its own)


@dataclass
class App:
    """The core and the adapters around it that `console` and `serve` start."""

    bot: Dispatcher
    store: SQLiteStore
    lease: Keeper  # this process's lease on the attempts it works on
    console: Console  # always there, for the terminal and as a log
    webhook: github_webhook.GitHubWebhook | None = None
    slack: slack_chat.SlackEvents | None = None
    discord: discord_chat.DiscordBot | None = None
    secrets: Secrets = field(default_factory=Secrets)

    async def start(self) -> None:
        self.lease.start()
        await self.bot.start()

    async def stop(self, grace: float = 0) -> None:
        """Stop taking work; running steps get `grace` seconds, then are marked interrupted."""
        try:
            await self.bot.stop(grace)
        finally:
            self.lease.end()

    async def idle(self) -> None:
        """Wait until the bot handled everything it received and finished it all."""
        await self.bot.idle()

    async def line(self, text: str) -> bool:
        """One line typed in the console."""
        return await self.console.line(text)


def open_store(data_dir: Path) -> SQLiteStore:
    """The store alone, for commands about the record (`stats`)."""
    return SQLiteStore(data_dir / "backportbot.db")


def repo_from_spec(spec: config_mod.RepoSpec, data_dir: Path, auth: Auth | None = None) -> Repo:
    if spec.path is not None:
        ws = Workspace.in_place(spec.path, data_dir, key=spec.name)
        ws.auth = auth
    else:
        assert spec.url is not None
        ws = Workspace.cached_clone(spec.name, spec.url, data_dir, auth)
    branches: dict[str, str] = {}
    display: dict[str, str] = {}
    for b in spec.branches:
        display[b.git_branch] = b.name
        for n in (b.name, b.git_branch, *b.aliases):
            branches[n] = b.git_branch
    return Repo(spec.name, ws, spec.main_branch, branches, display, commands(spec.commands),
                tuple(spec.fix_labels), tuple(spec.channels), spec.github, spec.push_repo, spec.push_url, spec.verify,
                spec.ci_timeout_minutes, (*PROPOSED, *spec.digest_include))


def commands(specs: list[config_mod.CommandSpec]) -> tuple[Command, ...]:
    return tuple(Command(c.name, c.run, c.timeout) for c in specs)


def cli_repo(cfg: config_mod.Config | None, data_dir: Path, repo: str | None, main: str | None,
             auth: Auth | None = None) -> Repo:
    """The repository a one-shot command is about. With a config, a configured name always means
    that repository, even when a folder of that name is here; anything else is a local path (so
    `./server` is the folder when `server` is also a configured name)."""
    if cfg is not None and (repo is None or repo in {r.name for r in cfg.repos} or not Path(repo).exists()):
        names = ", ".join(r.name for r in cfg.repos)
        if repo is None and len(cfg.repos) != 1:
            raise BadInput(f"name a repository with --repo: configured: {names}")
        if repo is not None and repo not in {r.name for r in cfg.repos}:
            raise BadInput(f"unknown repository {repo!r}; configured: {names} (and no folder {repo!r} is here)")
        found = repo_from_spec(cfg.repo(repo), data_dir, auth)
        found.workspace.fetch()
        return found
    if repo is None:
        raise BadInput("name a repository with --repo PATH (or give --config)")
    return from_path(Path(repo), data_dir, main)


def make_llm(cfg: config_mod.Config | None, secrets: Secrets) -> OpenAIModel | None:
    if cfg is None or not cfg.llm.enabled:
        return None
    return openai_model(cfg.llm.model, cfg.llm.timeout, secrets)


def openai_model(model: str, timeout: float, secrets: Secrets) -> OpenAIModel:
    """A model behind any OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY)."""
    base_url = secrets.openai_base_url
    # Local servers (llama.cpp, Ollama, vLLM) ignore the key; OpenAI needs it.
    key = value(secrets.openai_api_key) or ("unused" if base_url else None)
    # No retries in the client: OpenAIModel retries 429 and 5xx itself, so that every try is counted
    # in the attempt's LLM budget and none outlives the call's timeout (the client's would be unseen).
    client = openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)
    return OpenAIModel(client, model, timeout)


def make_sandbox(cfg: config_mod.Config | None, data_dir: Path) -> ProcessSandbox:
    """Build and test commands in bubblewrap, or in a container when the config says so, unless the
    config explicitly turns isolation off."""
    if cfg is not None and cfg.bot.isolation == "none":
        return ProcessSandbox(without_secrets())
    if cfg is not None and cfg.bot.isolation == "container" and cfg.bot.container_image:
        return ProcessSandbox(without_secrets(), Container(cfg.bot.container_runtime, cfg.bot.container_image,
                                                           cfg.bot.verify_network))
    return ProcessSandbox(without_secrets(), Bubblewrap(data_dir, cfg.bot.verify_network if cfg else False))


def isolation_line(cfg: config_mod.Config | None) -> str:
    """What `check-config` and `serve` say about where a fix's code runs."""
    if cfg is not None and cfg.bot.isolation == "none":
        return ("isolation: none — build and test commands run as the bot's children and can read its files "
                "and environment; every PR they verify says so")
    if cfg is not None and cfg.bot.isolation == "container" and cfg.bot.container_image:
        runtime, image = cfg.bot.container_runtime, cfg.bot.container_image
        what, problem = f"container ({runtime}, image {image})", container.unusable(runtime, image)
        where = f"{what}: {container.available(runtime)}"
    else:
        what, problem, where = "bubblewrap", bubblewrap.unusable(), f"bubblewrap ({bubblewrap.available()})"
    if problem is not None:
        return (f"isolation: {what}, NOT WORKING: {problem}; build and test commands will fail until it "
                "works, or [bot] isolation = \"none\" is set")
    return f"isolation: {where}"


def make_engine(cfg: config_mod.Config | None, data_dir: Path, llm: LLM | None = None) -> Engine:
    """The engine, with the model rung when the config turns it on."""
    sandbox = make_sandbox(cfg, data_dir)
    if cfg is None or llm is None:
        return Engine(sandbox=sandbox)
    return Engine(llm, sandbox, cfg.llm.max_calls, cfg.llm.max_tokens, cfg.llm.context_tokens,
                  cfg.llm.max_tokens_per_day)


def github_credentials(cfg: config_mod.Config | None, secrets: Secrets) -> Credentials | None:
    """GitHub's credentials when the config's forge is GitHub (BadInput when none are set)."""
    if cfg is None or cfg.forge.adapter != "github":
        return None
    key = value(secrets.github_app_private_key)
    if key and "\\n" in key and "\n" not in key:
        key = key.replace("\\n", "\n")  # a PEM set on one line with \n escapes, as CI systems often do
    return Credentials(secrets.github_api_url, value(secrets.github_token), secrets.github_app_id, key,
                       secrets.github_app_installation_id)


def git_auth(credentials: Credentials | None) -> Auth | None:
    """Credentials for every git network operation on GitHub's host (fetch, ls-remote, push)."""
    return GitAuth(credentials.api_url, credentials.token).env if credentials else None


def make_forge(cfg: config_mod.Config | None, store: SQLiteStore,
               credentials: Credentials | None) -> GitHubForge | LocalForge:
    """The forge the config names; the local one by default."""
    if cfg is not None and credentials is not None:
        return GitHubForge(credentials, comment_on_source_prs=cfg.forge.comment_on_source)
    return LocalForge(store)


def build_app(cfg: config_mod.Config | None, data_dir: Path, out: TextIO, *, user: str | None = None,
              repo_path: str | None = None, main_branch: str | None = None, interactive: bool = False,
              secrets: Secrets | None = None) -> App:
    """The core and the adapters the config names (by default: console chat, local forge)."""
    secrets = secrets or Secrets()
    redact = Redactor(secrets)
    store = SQLiteStore(data_dir / "backportbot.db", redact)
    lease = Keeper(store)  # taken by App.start
    credentials = github_credentials(cfg, secrets)
    if cfg is not None:
        repos = [repo_from_spec(spec, data_dir, git_auth(credentials)) for spec in cfg.repos]
        user = user or cfg.chat.console.user
        settings = Settings(frozenset(cfg.bot.maintainers) or frozenset({user}), cfg.bot.workers,
                            cfg.bot.ci_poll_seconds, cfg.digest.channel, cfg.digest.batch, cfg.digest.timezone)
        channel = cfg.chat.console.channel
        adapters = cfg.chat.adapters
    else:
        repos = [from_path(Path(repo_path or "."), data_dir, main_branch)]
        user = user or os.environ.get("USER") or "maintainer"
        channel = "console"
        settings = Settings(frozenset({user}), alert_channel=channel)
        adapters = ["console"]
    console_chat = ConsoleChat(out, channel, first_number=store.highest_message_number() + 1)
    forge = make_forge(cfg, store, credentials)
    team_chat: Chat | None = None
    discord_client = None
    web_client = None
    mirror: str | None = channel
    if "discord" in adapters:
        token = value(secrets.discord_token)
        if not token:
            raise BadInput("Discord needs DISCORD_TOKEN in the environment")
        discord_client = discord_chat.make_client()
        # Discord serves every channel but the console's; what happens on GitHub is mirrored to its channel.
        team_chat = discord_chat.DiscordChat(discord_client.http, store)
        mirror = cfg.chat.discord.channel if cfg is not None else None
    if "slack" in adapters:
        assert cfg is not None
        token = value(secrets.slack_bot_token)
        if not token:
            raise BadInput("Slack needs SLACK_BOT_TOKEN in the environment")
        web_client = slack_chat.client(token, secrets.slack_api_url)
        # Slack serves every channel but the console's; what happens on GitHub is mirrored to its channel.
        team_chat, mirror = slack_chat.SlackChat(web_client), cfg.chat.slack.channel
    owners: dict[str, Chat] = {} if team_chat is None else {channel: console_chat}
    comments = None
    if isinstance(forge, GitHubForge):  # a PR's comments are a channel too: github:owner/name#N
        comments = GitHubCommentChat(forge, {r.github: r for r in repos if r.github})
        owners["github:"] = comments
    router = ChatRouter(team_chat or console_chat, owners, mirror=mirror, redact=redact)
    llm = make_llm(cfg, secrets)
    ctx = Context({r.key: r for r in repos}, store, Workflow(store, lease.id), make_engine(cfg, data_dir, llm), router,
                  forge, settings, llm)
    bot = Dispatcher(ctx)
    app = App(bot, store, lease, Console(bot, console_chat, user, wait_each_line=not interactive), secrets=secrets)
    if discord_client is not None:
        assert cfg is not None
        app.discord = discord_chat.DiscordBot(bot, discord_client, set(cfg.chat.discord.maintainer_roles))
    if web_client is not None:
        assert cfg is not None
        signing = value(secrets.slack_signing_secret)
        if cfg.chat.slack.mode == "http" and not signing:
            raise BadInput("Slack's HTTP mode needs SLACK_SIGNING_SECRET in the environment")
        app.slack = slack_chat.SlackEvents(bot, web_client, signing if cfg.chat.slack.mode == "http" else None,
                                           cfg.chat.slack.maintainer_group)
    webhook_secret = value(secrets.github_webhook_secret)
    if isinstance(forge, GitHubForge) and webhook_secret and cfg is not None:
        # Imported only here: githubkit's webhook models take seconds to import.
        from adapters.forge.github_webhook import GitHubWebhook

        app.webhook = GitHubWebhook(bot, forge, webhook_secret, {r.github: r.key for r in repos if r.github},
                                    cfg.forge.label_pattern, comments)
    return app


def _bad_request_in_one_line(record: logging.LogRecord) -> bool:
    """aiohttp answers a malformed HTTP request 400 and logs it as an error with a traceback; it is
    the sender's mistake (or an attack), so one warning line says it."""
    if record.exc_info and isinstance(record.exc_info[1], HttpProcessingError):
        record.msg, record.args = f"{record.getMessage()}: {record.exc_info[1]}", ()
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


async def start_servers(app: App, cfg: config_mod.Config, out: TextIO) -> list[Stop]:
    """The webhook server (GitHub, Slack's HTTP mode) and Slack's Socket Mode; returns their stops."""
    stops: list[Stop] = []
    out.write(isolation_line(cfg) + "\n")
    routes = list(app.webhook.routes()) if app.webhook is not None else []
    if app.slack is not None:
        if cfg.chat.slack.mode == "http":
            routes.append(web.post("/slack/events", app.slack.http))
        else:
            app_token = value(app.secrets.slack_app_token)
            if not app_token:
                raise BadInput("Slack's Socket Mode needs SLACK_APP_TOKEN in the environment")
            handler = AsyncSocketModeHandler(app.slack.app, app_token)
            await handler.connect_async()  # type: ignore[no-untyped-call]
            stops.append(handler.close_async)
            out.write("Connected to Slack (Socket Mode)\n")
    if app.discord is not None:
        client = app.discord.client
        await client.login(value(app.secrets.discord_token) or "")
        task = asyncio.create_task(client.connect())

        async def stop_discord() -> None:
            await client.close()
            task.cancel()

        stops.append(stop_discord)
        out.write("Connecting to Discord\n")
    if routes:
        web_app = web.Application(client_max_size=GITHUB_MAX_BODY)
        web_app.add_routes(routes)
        # Slack and GitHub send plain bodies (signed as sent): a Content-Encoding is not undone,
        # so a body that claims gzip fails its signature instead of failing aiohttp mid-request.
        runner = web.AppRunner(web_app, auto_decompress=False)
        logging.getLogger("aiohttp.server").addFilter(_bad_request_in_one_line)
        await runner.setup()
        await web.TCPSite(runner, cfg.serve.host, cfg.serve.port).start()
        stops.append(runner.cleanup)
        port = runner.addresses[0][1]  # the real one when the config asks for port 0
        out.write(f"Listening on http://{cfg.serve.host}:{port} ({', '.join(sorted(r.path for r in routes))})\n")
    return stops


async def run(cfg: config_mod.Config | None, data_dir: Path, stream: TextIO, out: TextIO, *, serve: bool,
              user: str | None = None, repo_path: str | None = None, main_branch: str | None = None,
              secrets: Secrets | None = None) -> None:
    """`console`: the terminal chat. `serve`: the chat adapters, webhooks and digest schedule the
    config names, until SIGTERM or SIGINT: then no new work is taken, a running step gets the
    configured grace period, and what is still running is marked interrupted."""
    app = build_app(cfg, data_dir, out, user=user, repo_path=repo_path, main_branch=main_branch,
                    interactive=stream.isatty(), secrets=secrets)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # as PID 1 in a container, SIGTERM is ignored without this
        loop.add_signal_handler(sig, stopping.set)
    stops: list[Stop] = []
    try:
        if serve and cfg is not None:
            # The chats connect first (the notices of the start are posted through them); what they
            # receive waits in the inbox until the bot has recovered.
            stops = await start_servers(app, cfg, out)
        await app.start()
        if serve and cfg is not None and cfg.digest.enabled:
            schedule = DigestSchedule(app.bot, app.store, [r.name for r in cfg.repos], cfg.digest.cron,
                                      cfg.digest.timezone, cfg.digest.channel)
            await schedule.start()

            async def stop_schedule() -> None:
                schedule.stop()

            stops.append(stop_schedule)
        if cfg is None or "console" in cfg.chat.adapters or not serve:
            await app.console.run(stream, stopping)
        if stops:
            await stopping.wait()  # serve until the process is stopped
    finally:
        # The bot first, while the chats can still carry its notices; what arrives meanwhile is
        # stored in the inbox for the next start.
        await app.stop(cfg.bot.stop_grace_seconds if cfg is not None else 0)
        for stop in stops:
            await stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@dataclass
class Shell:
    """The one-shot commands (`backport`, `why`, `status`, `digest`): the store and one repository,
    with no chat and no forge."""

    store: SQLiteStore
    lease: Keeper
    workflow: Workflow
    engine: Engine
    repo: Repo

    @classmethod
    def open(cls, cfg: config_mod.Config | None, data_dir: Path, repo: str | None, main: str | None) -> Shell:
        store = SQLiteStore(data_dir / "backportbot.db")
        lease = Keeper(store)
        workflow = Workflow(store, lease.id)
        workflow.recover()  # any start of the bot cleans up after one that was killed
        secrets = Secrets()
        try:
            auth = git_auth(github_credentials(cfg, secrets))
        except BadInput:
            auth = None  # no GitHub credentials: a public repository is still fetched
        return cls(store, lease, workflow, make_engine(cfg, data_dir, make_llm(cfg, secrets)),
                   cli_repo(cfg, data_dir, repo, main, auth))

    def source(self, ref: str) -> Source:
        return source_mod.resolve(self.repo.workspace.git, ref, self.repo.main_ref)

    def backport(self, ref: str, to: list[str], with_deps: bool = False) -> list[Attempt]:
        """Each branch independently, two at a time; the result is committed on a backport branch
        (never one the bot did not write) and kept there: the service never publishes it.
        `with_deps`: on a conflict, the prerequisites it names are picked first (when each is a fix)."""
        repo = self.repo
        branches = repo.expand(to)  # BadInput before anything is recorded
        key = repo.source_key(ref)
        self.lease.start()
        try:
            request = self.store.add_request(repo.key, key, branches, requested_by="cli", origin="cli",
                                             with_deps=with_deps)
            attempts: dict[str, int] = {}
            try:
                for b in branches:
                    attempts[b] = self.store.add_attempt(request, repo.key, key, b)
            except AlreadyOpen as e:
                self.store.forget(request)
                raise BadInput(f"a backport of {key} to {e.attempt.branch} is already "
                               f"{reports.state_words(e.attempt.state)} (attempt {e.attempt.id}); "
                               f"wait for it, or cancel it") from None
            for attempt_id in attempts.values():
                self.workflow.queue(attempt_id)
            try:
                source = self.source(ref)
            except BackportFailure as failure:
                return [self.workflow.fail(attempts[b], failure) for b in branches]

            def one(branch: str) -> Attempt:
                a = run_attempt(self.engine, self.workflow, self.store, attempts[branch], repo, source, branch,
                                commands=repo.commands)
                return self.workflow.keep(a.id) if a.state == State.READY else a

            with ThreadPoolExecutor(max_workers=2) as pool:
                return list(pool.map(one, branches))
        finally:
            self.lease.end()

    def digest(self, since: str | None, timezone: str = "UTC", record: bool = False) -> tuple[str, list[Candidate]]:
        """The window in words and the candidates in it: since `since` (a commit, or a date from its
        00:00 in `timezone`), else since the previous digest's main-branch head, else from 00:00
        seven days ago. `record`: the next digest starts where this one ended. No forge here: the
        evidence is the commits' messages and paths."""
        git, key = self.repo.workspace.git, self.repo.key
        last = self.store.last_digest(key)
        since = since or (last.head if last and git.rev(f"{last.head}^{{commit}}") else
                          candidates_mod.days_back(FIRST_WINDOW_DAYS, timezone))
        window = candidates_mod.window(git, self.repo.main_ref, since, timezone)
        found = self.repo.candidates(window.since, self.store.dismissed(key), timezone=timezone)
        if record:
            self.store.add_digest(key, window.head, "cli", "", len(found))
        return window.describe(git, timezone), found


def evaluate_digest(args: argparse.Namespace) -> int:
    """`backportbot eval digest`: the digest replayed over past weeks, scored against later backports."""
    if args.weeks and args.since:
        raise BadInput("give --weeks N or --since DATE, not both")
    return digest_eval.run(args.repo, args.main, args.branches, args.weeks, args.since, args.until, args.json,
                           timezone=args.timezone)


def evaluate(args: argparse.Namespace) -> int:
    """`backportbot eval`: the engine (and the model, with --llm) on the repository's own history."""
    llm = openai_model(args.model, args.llm_timeout, Secrets()) if args.llm else None
    verify = tuple(Command(f"verify {n + 1}", cmd, args.verify_timeout) for n, cmd in enumerate(args.verify))
    return evaluate_mod.run(args.repo, args.main, args.branches, args.since, args.limit, args.jobs, args.json,
                            llm=llm, verify=verify, sandbox=make_sandbox(None, config_mod.data_dir(None)),
                            context_tokens=args.context_tokens)
