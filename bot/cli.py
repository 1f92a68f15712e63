"""The `backportbot` command: parses the arguments and calls the composition root (bot.app)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from bot import app as app_mod
from bot import config as config_mod
from bot import doctor
from bot.config import ConfigError
from bot.core import reports
from bot.core.workflow import SUCCEEDED
from bot.engine.errors import BackportFailure, BadInput
from bot.secrets import RedactingFilter, Redactor, Secrets, harden

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
    bp.add_argument("--with-deps", action="store_true",
                    help="on a conflict, pick the prerequisites it names first, in the same result "
                         "(when each is a fix)")
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

    sub.add_parser("doctor", help="one real call per configured integration (serve runs it at start)")
    sub.add_parser("health", help="exit 0 when a bot on this machine is running (for container health checks)")
    tp = sub.add_parser("stats", help="success, model share and time saved (with --json: per week, for dashboards)")
    tp.add_argument("--json", action="store_true", help="one JSON document with a row per ISO week")
    tp.add_argument("--weeks", type=_weeks, help="the last N weeks, this one included (with --json)")

    for name, text in (("console", "chat with the bot in this terminal"),
                       ("serve", "run the chat adapters, webhooks and digest schedule the config names")):
        sp_ = sub.add_parser(name, help=text)
        sp_.add_argument("--repo", help="a local repository path (when there is no config)")
        sp_.add_argument("--main", help="the main branch (without config)")
        sp_.add_argument("--user", help="who you are in the console (default: config, then $USER)")
        if name == "serve":
            sp_.add_argument("--host", help="the address the webhook server listens on (default: [serve] host)")

    gp = sub.add_parser("digest", help="print the candidate digest")
    gp.add_argument("--repo", required=False, help="a local repository path, or a configured repository name")
    gp.add_argument("--main", help="the main branch (default: guessed, or from config)")
    gp.add_argument("--since", help="a date (from its 00:00 in [digest] timezone) or a commit (default: the "
                                    "previous digest's main-branch head, else 00:00 seven days ago)")
    gp.add_argument("--json", action="store_true", help="one JSON object per candidate; [] when there is none")
    gp.add_argument("--record", action="store_true", help="the next digest starts where this one ended")

    ep = sub.add_parser("eval", help="replay the repository's own backport history and score the engine; "
                                     "`eval digest`: score the candidate digest on past weeks")
    ep.add_argument("mode", nargs="?", choices=["digest"],
                    help="digest: replay past weeks as of their end and score the digest against later backports")
    ep.add_argument("--repo", type=Path, required=True, help="a local clone with the main and release branches")
    ep.add_argument("--main", help="the main branch (default: main, master, unstable or trunk)")
    ep.add_argument("--branches", nargs="+", help="release branches (default: every other local branch)")
    ep.add_argument("--since", help="only backports made after this date (git's --since format)")
    ep.add_argument("--limit", type=int, help="replay an even sample of at most N pairs")
    ep.add_argument("--jobs", type=int, default=2, help="conflicted pairs replayed at once")
    ep.add_argument("--json", type=Path, help="write the per-pair details here")
    ep.add_argument("--llm", action="store_true", help="add the LLM rung (OPENAI_BASE_URL, OPENAI_API_KEY)")
    ep.add_argument("--model", default="gpt-4o-mini", help="the model for --llm")
    ep.add_argument("--llm-timeout", type=float, default=120, help="seconds per model request (default 120)")
    ep.add_argument("--context-tokens", type=int, default=3000,
                    help="tokens per model request, the hunk and the code gathered around it (default 3000)")
    ep.add_argument("--verify", action="append", default=[], metavar="COMMAND",
                    help="also run this build/test command on every replayed pair (repeatable)")
    ep.add_argument("--verify-timeout", type=int, default=1800, help="seconds per --verify command")
    ep.add_argument("--weeks", type=_weeks, help="eval digest: the N weeks before --until (default 4)")
    ep.add_argument("--until", help="eval digest: the last week ends at 00:00 of this date (default: the Monday "
                                    "eight weeks ago); with --since DATE, the weeks between them")
    ep.add_argument("--timezone", default="UTC", help="eval digest: where weeks start at 00:00 (default UTC)")

    dp = sub.add_parser("demo", help="build a small repository and backport three fixes in it")
    dp.add_argument("--dir", type=Path, help="where to create the demo repository (default: a temp dir)")
    return p


def _weeks(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 5200:
        raise argparse.ArgumentTypeError(f"a number of weeks, from 1 to 5200 (not {text!r})")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from bot import demo

            return demo.main(args.dir)
        if args.command == "eval" and args.mode == "digest":
            return app_mod.evaluate_digest(args)
        if args.command == "eval":
            if args.weeks or args.until:
                raise BadInput("--weeks and --until go with `eval digest`")
            return app_mod.evaluate(args)
        if args.command == "check-config":
            checked = config_mod.load(args.file)
            # The remotes too: a configured branch missing there fails every backport to it.
            remotes = doctor.remotes(checked, Secrets())
            print("\n".join(c.line() for c in remotes))
            if not doctor.passed(remotes):
                print(f"{args.file}: the remotes do not match it", file=sys.stderr)
                return EXIT_BAD_INPUT
            print(f"{args.file}: ok")
            print(app_mod.isolation_line(checked))
            return EXIT_OK
        cfg = config_mod.load(args.config) if args.config else None
        data_dir = config_mod.data_dir(args.data_dir, cfg)
        if data_dir.exists() and not data_dir.is_dir():
            raise BadInput(f"the data directory {data_dir} is a file")
        if args.command == "stats":
            store = app_mod.open_store(data_dir)
            if args.weeks is not None and not args.json:
                raise BadInput("--weeks goes with --json (the text covers every backport)")
            print(json.dumps(reports.stats_json(store, args.weeks)) if args.json else reports.stats(store))
            return EXIT_OK
        if args.command == "health":
            ok, said = doctor.health(data_dir)
            print(said)
            return EXIT_OK if ok else EXIT_FAILED
        if getattr(args, "host", None) and cfg is not None:
            cfg = cfg.model_copy(update={"serve": cfg.serve.model_copy(update={"host": args.host})})
        if args.command == "doctor":
            if cfg is None:
                raise BadInput("doctor checks the integrations a config names: give --config FILE")
            checks = asyncio.run(doctor.run(cfg, Secrets()))
            print(doctor.report(checks))
            return EXIT_OK if doctor.passed(checks) else EXIT_BAD_INPUT
        if args.command in ("console", "serve"):
            secrets = Secrets()  # read once; then out of reach of everything else
            for handler in logging.getLogger().handlers:
                handler.addFilter(RedactingFilter(Redactor(secrets)))
            harden()
            if args.command == "serve" and cfg is not None:
                checks = asyncio.run(doctor.run(cfg, secrets))
                print(doctor.report(checks), flush=True)
                if not doctor.passed(checks):
                    print("backportbot: not starting: fix what failed above (`backportbot doctor` checks again)",
                          file=sys.stderr)
                    return EXIT_BAD_INPUT
            asyncio.run(app_mod.run(cfg, data_dir, sys.stdin, sys.stdout, serve=args.command == "serve",
                                    user=args.user, repo_path=args.repo, main_branch=args.main, secrets=secrets))
            return EXIT_OK
        shell = app_mod.Shell.open(cfg, data_dir, args.repo, args.main)
        if args.command == "backport":
            attempts = shell.backport(args.ref, args.to, args.with_deps)
            for a in attempts:
                print(json.dumps(reports.as_json(a)) if args.json else reports.result_line(a))
            return EXIT_OK if all(a.state in SUCCEEDED for a in attempts) else EXIT_FAILED
        if args.command == "why":
            repo = shell.repo
            print(reports.why(shell.store, repo.key, repo.source_key(args.ref), repo.branch(args.branch)[0]))
            return EXIT_OK
        if args.command in ("digest", "status"):
            shell.repo.require_branches()  # else nothing to say, and not why
        if args.command == "digest":
            window, found = shell.digest(args.since, cfg.digest.timezone if cfg else "UTC", args.record)
            if args.json:
                for cand in found:
                    print(json.dumps(cand.as_json()))
                if not found:
                    print("[]")
            else:
                print(reports.digest_header(found, shell.repo.key, window=window))
                for cand in found:
                    print("  " + cand.line())
            sys.stdout.flush()  # here, where a closed pipe is caught below, not at exit
            return EXIT_OK
        if args.command == "status":
            print(reports.status(shell.store, shell.repo, shell.source(args.ref)))
            return EXIT_OK
    except BrokenPipeError:  # the reader went away (`| head`): what it wanted, it has
        # Python flushes stdout again at exit: point it at /dev/null so that raises nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
