"""The `backportbot` command."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot import config as config_mod
from bot import report
from bot.engine import source as source_mod
from bot.engine.backport import Engine, Outcome, Plan
from bot.errors import BackportFailure, BadInput, ConfigError
from bot.repos import Repo, from_path, from_spec
from bot.service import Service
from bot.store import Store

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backportbot", description="Carry fixes back to release branches.")
    p.add_argument("--data-dir", type=Path, help="state directory (default: $BACKPORTBOT_HOME)")
    p.add_argument("--config", type=Path, help="config file (TOML); not needed with --repo PATH")
    sub = p.add_subparsers(dest="command", required=True)

    def repo_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--repo", required=False, help="a local repository path, or a configured repository name")
        sp.add_argument("--main", help="the main branch (default: guessed, or from config)")

    bp = sub.add_parser("backport", help="backport a fix to release branches")
    bp.add_argument("ref", help="commit SHA, #N (a PR number found by its (#N) subject) or A..B")
    bp.add_argument("--to", nargs="+", required=True, metavar="BRANCH", help="target branches, or `all`")
    bp.add_argument("--json", action="store_true", help="one JSON object per line per branch")
    repo_args(bp)

    wp = sub.add_parser("why", help="explain the last attempt of a backport")
    wp.add_argument("ref")
    wp.add_argument("branch")
    repo_args(wp)

    sp = sub.add_parser("status", help="which branches have the fix")
    sp.add_argument("ref")
    repo_args(sp)

    cp = sub.add_parser("check-config", help="validate a config file")
    cp.add_argument("file", type=Path)

    for name, text in (("console", "chat with the bot in this terminal"),
                       ("serve", "run the chat adapters, webhooks and digest schedule the config names")):
        sp_ = sub.add_parser(name, help=text)
        sp_.add_argument("--repo", help="a local repository path (when there is no config)")
        sp_.add_argument("--main", help="the main branch (without config)")
        sp_.add_argument("--user", help="who you are in the console (default: config, then $USER)")

    gp = sub.add_parser("digest", help="print the candidate digest")
    gp.add_argument("--repo", required=False, help="a local repository path, or a configured repository name")
    gp.add_argument("--main", help="the main branch (default: guessed, or from config)")
    gp.add_argument("--since", help="a date or a commit (default: 7 days ago)")
    gp.add_argument("--json", action="store_true", help="one JSON object per candidate")

    ep = sub.add_parser("eval", help="replay the repository's own backport history and score the engine")
    ep.add_argument("--repo", type=Path, required=True, help="a local clone with the main and release branches")
    ep.add_argument("--main", help="the main branch (default: main, master, unstable or trunk)")
    ep.add_argument("--branches", nargs="+", help="release branches (default: every other local branch)")
    ep.add_argument("--since", help="only backports made after this date (git's --since format)")
    ep.add_argument("--limit", type=int, help="replay an even sample of at most N pairs")
    ep.add_argument("--jobs", type=int, default=2, help="conflicted pairs replayed at once")
    ep.add_argument("--json", type=Path, help="write the per-pair details here")
    ep.add_argument("--llm", action="store_true", help="add the LLM rung (OPENAI_BASE_URL, OPENAI_API_KEY)")
    ep.add_argument("--model", default="gpt-4o-mini", help="the model for --llm")
    ep.add_argument("--verify", action="append", default=[], metavar="COMMAND",
                    help="also run this build/test command on every replayed pair (repeatable)")
    ep.add_argument("--verify-timeout", type=int, default=1800, help="seconds per --verify command")

    dp = sub.add_parser("demo", help="build a small repository and backport three fixes in it")
    dp.add_argument("--dir", type=Path, help="where to create the demo repository (default: a temp dir)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from bot import demo

            return demo.main(args.dir)
        if args.command == "eval":
            from bot import evaluate

            llm = (importlib.import_module("adapters.llm.openai").OpenAIModel.from_environment(args.model, 120)
                   if args.llm else None)
            verify = tuple(config_mod.CommandSpec(name=f"verify {n + 1}", run=cmd, timeout=args.verify_timeout)
                           for n, cmd in enumerate(args.verify))
            return evaluate.run(args.repo, args.main, args.branches, args.since, args.limit, args.jobs, args.json,
                                llm=llm, verify=verify)
        if args.command == "check-config":
            config_mod.load(args.file)
            print(f"{args.file}: ok")
            return EXIT_OK
        cfg = config_mod.load(args.config) if args.config else None
        data_dir = config_mod.data_dir(args.data_dir, cfg)
        if args.command in ("console", "serve"):
            return asyncio.run(run_console(args, cfg, data_dir, sys.stdin, sys.stdout))
        store = Store(data_dir / "backportbot.db")
        engine = make_engine(cfg, store)
        engine.recover()
        repo = _repo(args, cfg, data_dir)
        if args.command == "backport":
            return _backport(args, repo, engine, store)
        if args.command == "why":
            branch = repo.branch(args.branch)[0]
            print(report.why(store, repo.key, repo.source_key(args.ref), branch))
            return EXIT_OK
        if args.command == "digest":
            from bot import digest

            found = digest.find(repo, args.since or "7 days ago", dismissed=store.dismissed(repo.key))
            if args.json:
                for cand in found:
                    print(json.dumps(cand.as_json()))
            else:
                print(digest.render(found, repo.key))
                for cand in found:
                    print("  " + cand.line())
            return EXIT_OK
        if args.command == "status":
            print(report.status(store, repo, source_mod.resolve(repo.workspace.git, args.ref, repo.main_ref)))
            return EXIT_OK
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except BadInput as e:
        print(f"backportbot: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BackportFailure as e:  # e.g. status of an unknown PR
        print(f"backportbot: {e.reason}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_BAD_INPUT


@dataclass
class App:
    """The service and the adapters around it that `serve` starts."""

    service: Service
    console: Any  # adapters.chat.console.Console: always there, for the terminal and as a log
    webhook: Any = None  # GitHub webhook receiver
    slack: Any = None  # the Bolt app
    slack_group: str | None = None
    discord: Any = None  # the Discord bot

    async def line(self, text: str) -> bool:
        """One line typed in the console."""
        return bool(await self.console.line(text))


def build_app(cfg: config_mod.Config | None, data_dir: Path, out: TextIO, *, user: str | None = None,
              repo_path: str | None = None, main_branch: str | None = None, interactive: bool = False) -> App:
    """The service and the adapters the config names (by default: console chat, local forge)."""
    console_mod = importlib.import_module("adapters.chat.console")
    router_mod = importlib.import_module("adapters.chat.router")
    store = Store(data_dir / "backportbot.db")
    if cfg is not None:
        repos = [from_spec(spec, data_dir) for spec in cfg.repos]
        user = user or cfg.chat.console.user
        maintainers = set(cfg.bot.maintainers) or {user}
        workers, channel = cfg.bot.workers, cfg.chat.console.channel
    else:
        repos = [from_path(Path(repo_path or "."), data_dir, main_branch)]
        user = user or os.environ.get("USER") or "maintainer"
        maintainers, workers, channel = {user}, 2, "console"
    console_chat = console_mod.ConsoleChat(out, channel, first_number=store.highest_message_number() + 1)
    forge = make_forge(cfg, store)
    router = router_mod.ChatRouter(console_chat, {}, mirror=channel)
    slack = discord_bot = None
    if cfg is not None and "discord" in cfg.chat.adapters:
        discord_mod = importlib.import_module("adapters.chat.discord")
        if not os.environ.get("DISCORD_TOKEN"):
            raise BadInput("Discord needs DISCORD_TOKEN in the environment")
        discord_client = discord_mod.make_client()
        router = router_mod.ChatRouter(discord_mod.DiscordChat(discord_client.http), {channel: console_chat})
    if cfg is not None and "slack" in cfg.chat.adapters:
        slack_mod = importlib.import_module("adapters.chat.slack")
        token = os.environ.get("SLACK_BOT_TOKEN")
        if not token:
            raise BadInput("Slack needs SLACK_BOT_TOKEN in the environment")
        web = slack_mod.client(token, os.environ.get("SLACK_API_URL"))
        slack = (slack_mod, web)
        # Slack serves every channel but the console's; what happens on GitHub is mirrored to its channel.
        router = router_mod.ChatRouter(slack_mod.SlackChat(web), {channel: console_chat},
                                       mirror=cfg.chat.slack.channel)
    engine = make_engine(cfg, store)
    service = Service(repos=repos, store=store, engine=engine, chat=router, forge=forge,
                      maintainers=maintainers, workers=workers, llm=engine.ladder.llm,
                      ci_poll_seconds=cfg.bot.ci_poll_seconds if cfg is not None else 60)
    if cfg is not None and "discord" in cfg.chat.adapters:
        discord_bot = discord_mod.DiscordBot(service, discord_client, set(cfg.chat.discord.maintainer_roles))
    service.alert_channel = cfg.digest.channel if cfg is not None else channel
    service.batching = cfg.digest.batch if cfg is not None else False
    app = App(service, console_mod.Console(service, console_chat, user, wait_each_line=not interactive),
              discord=discord_bot)
    if slack is not None and cfg is not None:
        slack_mod, web = slack
        secret = os.environ.get("SLACK_SIGNING_SECRET")
        if cfg.chat.slack.mode == "http" and not secret:
            raise BadInput("Slack's HTTP mode needs SLACK_SIGNING_SECRET in the environment")
        app.slack = slack_mod.build_app(service, store, web, secret if cfg.chat.slack.mode == "http" else None)
        app.slack_group = cfg.chat.slack.maintainer_group
    if cfg is not None and cfg.forge.adapter == "github":
        hooks = importlib.import_module("adapters.forge.github_webhook")
        router.by_prefix["github:"] = hooks.GitHubCommentChat(forge, {r.github: r for r in repos if r.github})
        secret = os.environ.get("GITHUB_WEBHOOK_SECRET")
        if secret:
            app.webhook = hooks.GitHubWebhook(service, forge, store, secret, cfg.forge.label_pattern)
    return app


def make_engine(cfg: config_mod.Config | None, store: Store) -> Engine:
    """The engine, with the LLM rung when the config turns it on."""
    llm = make_llm(cfg)
    if cfg is None or llm is None:
        return Engine(store)
    return Engine(store, llm, cfg.llm.max_calls, cfg.llm.max_tokens)


def make_llm(cfg: config_mod.Config | None) -> Any:
    if cfg is None or not cfg.llm.enabled:
        return None
    return importlib.import_module("adapters.llm.openai").OpenAIModel.from_environment(cfg.llm.model, cfg.llm.timeout)


def make_forge(cfg: config_mod.Config | None, store: Store) -> Any:
    """The forge the config names; the local one by default."""
    if cfg is not None and cfg.forge.adapter == "github":
        github = importlib.import_module("adapters.forge.github")
        forge = github.GitHubForge.from_environment()
        forge.comment_on_source_prs = cfg.forge.comment_on_source
        return forge
    return importlib.import_module("adapters.forge.local").LocalForge(store)


async def run_console(args: argparse.Namespace, cfg: config_mod.Config | None, data_dir: Path,
                      stream: TextIO, out: TextIO) -> int:
    """`console`: the terminal chat. `serve`: the chat adapters and webhooks the config names, until stopped."""
    app = build_app(cfg, data_dir, out, user=args.user, repo_path=args.repo, main_branch=args.main,
                            interactive=stream.isatty())
    await app.service.start()
    stops: list[Any] = []
    try:
        if args.command == "serve" and cfg is not None:
            stops = await start_servers(app, cfg, out)
        if args.command == "serve" and cfg is not None and cfg.digest.enabled:
            from bot.scheduler import DigestSchedule

            schedule = DigestSchedule(app.service, list(app.service.repos.values()), cfg.digest.cron,
                                      cfg.digest.timezone, cfg.digest.channel)
            await schedule.start()

            async def stop_schedule() -> None:
                schedule.stop()

            stops.append(stop_schedule)
        if cfg is None or "console" in cfg.chat.adapters or args.command == "console":
            await app.console.run(stream)
        if stops:
            await asyncio.Event().wait()  # serve until the process is stopped
    finally:
        for stop in stops:
            await stop()
        await app.service.stop()
    return EXIT_OK


async def start_servers(app: App, cfg: config_mod.Config, out: TextIO) -> list[Any]:
    """The webhook server (GitHub, Slack's HTTP mode) and Slack's Socket Mode; returns their stops."""
    from aiohttp import web

    stops: list[Any] = []
    routes = list(app.webhook.routes()) if app.webhook is not None else []
    if app.slack is not None:
        if app.slack_group:
            members = await app.slack.client.usergroups_users_list(usergroup=app.slack_group)
            app.service.maintainers |= set(members.get("users", []))
        if cfg.chat.slack.mode == "http":
            from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

            async def slack_events(request: web.Request) -> web.Response:
                return await to_aiohttp_response(await app.slack.async_dispatch(await to_bolt_request(request)))

            routes.append(web.post("/slack/events", slack_events))
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            app_token = os.environ.get("SLACK_APP_TOKEN")
            if not app_token:
                raise BadInput("Slack's Socket Mode needs SLACK_APP_TOKEN in the environment")
            handler = AsyncSocketModeHandler(app.slack, app_token)
            await handler.connect_async()
            stops.append(handler.close_async)
            out.write("Connected to Slack (Socket Mode)\n")
    if app.discord is not None:
        client = app.discord.client
        await client.login(os.environ["DISCORD_TOKEN"])
        task = asyncio.create_task(client.connect())

        async def stop_discord() -> None:
            await client.close()
            task.cancel()

        stops.append(stop_discord)
        out.write("Connecting to Discord\n")
    if routes:
        web_app = web.Application()
        web_app.add_routes(routes)
        runner = web.AppRunner(web_app)
        await runner.setup()
        await web.TCPSite(runner, cfg.serve.host, cfg.serve.port).start()
        stops.append(runner.cleanup)
        port = runner.addresses[0][1]  # the real one when the config asks for port 0
        out.write(f"Listening on http://{cfg.serve.host}:{port} ({', '.join(sorted(r.path for r in routes))})\n")
    return stops


def _repo(args: argparse.Namespace, cfg: config_mod.Config | None, data_dir: Path) -> Repo:
    if cfg is not None and (args.repo is None or not Path(args.repo).exists()):
        repo = from_spec(cfg.repo(args.repo), data_dir)
        repo.workspace.fetch()
        return repo
    if args.repo is None:
        raise BadInput("name a repository with --repo PATH (or give --config)")
    return from_path(Path(args.repo), data_dir, args.main)


def _backport(args: argparse.Namespace, repo: Repo, engine: Engine, store: Store) -> int:
    branches = repo.expand(args.to)  # BadInput before anything is recorded
    key = repo.source_key(args.ref)
    request = store.add_request(repo.key, key, branches, requested_by="cli", origin="cli")
    attempts = {b: store.add_attempt(request, repo.key, key, b) for b in branches}
    try:
        source = source_mod.resolve(repo.workspace.git, args.ref, repo.main_ref)
    except BackportFailure as failure:
        outcomes = [engine.fail(attempts[b], failure) for b in branches]
    else:
        def one(branch: str) -> Outcome:
            plan = Plan(repo.workspace, source, branch, repo.branch(branch)[1], repo.main_ref,
                        repo.commands, repo.fix_labels)
            return engine.run(attempts[branch], plan)

        with ThreadPoolExecutor(max_workers=2) as pool:  # each branch is independent
            outcomes = list(pool.map(one, branches))
    for o in outcomes:
        print(json.dumps(o.as_json()) if args.json else _line(o))
    return EXIT_OK if all(o.succeeded for o in outcomes) else EXIT_FAILED


def _line(o: Outcome) -> str:
    if o.succeeded:
        methods = [m for c in o.conflicts for m in c["resolved_by"]]
        note = f"; conflicts resolved: {', '.join(methods)}" if methods else ""
        note += "; needs a maintainer's approval" if o.needs_approval else ""
        return f"{o.branch}: ok: {o.result_branch} at {(o.result_commit or '')[:10]}{note}"
    return f"{o.branch}: failed at {o.stage} ({o.failure_kind}): {o.reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
