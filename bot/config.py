"""Typed configuration: one TOML file; secrets only from the environment.

Pydantic does the validation so that every problem comes back with its key path, which is
what `backportbot check-config` prints as `FILE: key.path: what is wrong`.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.core.repos import DEFAULT_FIX_LABELS
from bot.engine.candidates import OPTIONAL
from bot.engine.errors import BadInput
from bot.engine.git import Git
from bot.secrets import SECRET_ENV_VARS

# Keys that look like secrets are refused with a pointer to the environment variable to use.
SECRET_KEY = re.compile(r"(token|secret|password|api_key|apikey|private_key)$", re.I)
# Values that look like credentials: the shapes of GitHub, Slack and OpenAI tokens, and a URL
# with a user and password (or a token) before its host.
SECRET_VALUE = re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|xox[abeprs]-[\w-]{10,}|xapp-[\w-]{10,}"
                          r"|sk-[\w-]{20,})|\b[a-z][a-z0-9+.-]*://[^/\s@]+@", re.I)
# A repository's name names directories and branches: no path tricks.
NAME = r"^[A-Za-z0-9_][\w.-]*$"  # never "." nor ".."
CHAT_ADAPTERS = ("console", "slack", "discord")


class ConfigError(Exception):
    """The configuration is invalid; `problems` holds (key.path, message) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {key}: {msg}" for key, msg in problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandSpec(Strict):
    """A build or test command run in the backport's work tree."""

    name: str = Field(min_length=1)
    run: str = Field(min_length=1)
    timeout: int = Field(default=1800, gt=0, description="seconds")


class BranchSpec(Strict):
    name: str = Field(min_length=1, description="what people type and what titles show, e.g. 8.1")
    ref: str | None = Field(default=None, description="git branch, e.g. release/8.1; default: name")
    aliases: list[str] = []

    @property
    def git_branch(self) -> str:
        return self.ref or self.name


class RepoSpec(Strict):
    name: str = Field(pattern=NAME, description="letters, digits, '.', '_' and '-'")
    url: str | None = None
    path: Path | None = None
    main_branch: str = "main"
    branches: list[BranchSpec] = Field(min_length=1)
    fix_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_FIX_LABELS))
    commands: list[CommandSpec] = []
    channels: list[str] = Field(default=[], description="chat channels linked to this repository")
    github: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name on GitHub")
    push_repo: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$", description="a fork to push to")
    push_url: str | None = Field(default=None, description="git URL to push backport branches to")
    verify: str = Field(default="local", pattern="^(local|ci)$",
                        description="local: run `commands` here; ci: open a draft PR and follow its checks")
    ci_timeout_minutes: int = Field(default=60, ge=1, le=10080,
                                    description="with verify = \"ci\": minutes after the PR opened without any CI "
                                                "report before the thread is told and the bot stops waiting")

    digest_include: list[str] = Field(
        default=[], description="categories the digest also proposes besides security, crash or data loss, bug "
                                "and build: \"test-only\", \"docs\"")

    @field_validator("digest_include")
    @classmethod
    def _optional_categories(cls, names: list[str]) -> list[str]:
        for n in names:
            if n not in OPTIONAL:
                raise ValueError(f"unknown digest category {n!r}; these can be added: {', '.join(OPTIONAL)}")
        return names

    @model_validator(mode="after")
    def _one_location(self) -> RepoSpec:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of 'url' (a clone URL) or 'path' (a local repository)")
        names: dict[str, str] = {}
        for b in self.branches:
            for n in (b.name, *b.aliases):
                if n in names and names[n] != b.name:
                    raise ValueError(f"branch name or alias {n!r} is used by both {names[n]!r} and {b.name!r}")
                if n == self.main_branch:
                    raise ValueError(f"release branch {n!r} is the main branch")
                names[n] = b.name
        return self


class BotSpec(Strict):
    data_dir: Path | None = None
    maintainers: list[str] = Field(default=[], description="chat user ids whose approvals count")
    workers: int = Field(default=2, ge=1, le=32, description="backports run at the same time")
    ci_poll_seconds: int = Field(default=60, ge=1, description="how often to look at CI checks (webhooks come first)")
    isolation: str = Field(
        default="bubblewrap", pattern="^(bubblewrap|container|none)$",
        description="where a fix's build and test commands run: bubblewrap (they cannot see the bot), container "
                    "(the same, in container_image under container_runtime), or none (they run as the bot's "
                    "children and can read its files; every PR verified so says it)")
    verify_network: bool = Field(default=False, description="let build and test commands reach the network")
    container_runtime: str = Field(default="podman", pattern="^(podman|docker)$",
                                   description="with isolation = \"container\": the runtime that runs them")
    container_image: str | None = Field(
        default=None, min_length=1, pattern=r"^[^\s-]\S*$",
        description="with isolation = \"container\": the project's build image, already pulled "
                    "(e.g. docker.io/library/gcc:13); the bot never pulls")
    stop_grace_seconds: float = Field(
        default=8, ge=0, le=300, description="on SIGTERM, how long a running step may take to finish before it is "
                                             "marked interrupted (docker stop waits 10 s)")

    @model_validator(mode="after")
    def _container_needs_an_image(self) -> BotSpec:
        if self.isolation == "container" and not self.container_image:
            raise ValueError("isolation = \"container\" needs container_image: the image build and test commands "
                             "run in (e.g. \"docker.io/library/gcc:13\")")
        return self


class ConsoleSpec(Strict):
    user: str = Field(default="maintainer", min_length=1, description="who you are in the console")
    channel: str = "console"


class SlackSpec(Strict):
    mode: str = Field(default="socket", pattern="^(socket|http)$",
                      description="socket: SLACK_APP_TOKEN; http: POST /slack/events with SLACK_SIGNING_SECRET")
    channel: str | None = Field(default=None, description="channel id that also sees what happens on GitHub")
    maintainer_group: str | None = Field(default=None, description="a user group id whose members are maintainers")


class DiscordSpec(Strict):
    maintainer_roles: list[int] = Field(default=[], description="role ids whose members are maintainers")
    channel: str | None = Field(default=None, description="channel id that also sees what happens on GitHub")


class ChatSpec(Strict):
    adapters: list[str] = Field(default=["console"], description="chat adapters `serve` starts")
    console: ConsoleSpec = ConsoleSpec()
    slack: SlackSpec = SlackSpec()
    discord: DiscordSpec = DiscordSpec()

    @field_validator("adapters")
    @classmethod
    def _known(cls, adapters: list[str]) -> list[str]:
        for a in adapters:
            if a not in CHAT_ADAPTERS:
                raise ValueError(f"unknown chat adapter {a!r}; available: {', '.join(CHAT_ADAPTERS)}")
        if "slack" in adapters and "discord" in adapters:
            raise ValueError("one team chat at a time: slack or discord (the console can go with either)")
        return adapters


class ForgeSpec(Strict):
    adapter: str = Field(default="local", pattern="^(local|github)$", description="where PRs are opened")
    label_pattern: str = Field(default="backport/{branch}", description="PR labels that request a backport")
    comment_on_source: bool = Field(default=True, description="report each result on the source PR")


class ServeSpec(Strict):
    host: str = Field(default="127.0.0.1", description="address of the webhook server")
    port: int = Field(default=8080, ge=0, le=65535)


class LLMSpec(Strict):
    enabled: bool = Field(default=False, description="off: the ladder is deterministic only")
    model: str = Field(default="gpt-4o-mini", min_length=1)
    timeout: float = Field(default=60, gt=0, description="seconds per request")
    max_calls: int = Field(default=8, ge=1, description="requests per attempt")
    max_tokens: int = Field(default=40_000, ge=1, description="tokens per attempt")
    max_tokens_per_day: int = Field(default=1_000_000, ge=1, description="tokens per repository per UTC day")
    context_tokens: int = Field(default=3000, ge=200, description="tokens per request: the hunk and the code "
                                "gathered around it (the rest is cut, and the model is told what)")


class DigestSpec(Strict):
    enabled: bool = Field(default=False, description="post the candidate digest on a schedule in `serve`")
    cron: str = Field(default="0 9 * * mon", description="crontab: minute hour day month weekday")
    timezone: str = "UTC"
    channel: str = Field(default="console", description="chat channel the digest goes to")
    batch: bool = Field(default=False, description="✅ on a non-security candidate adds it to its branches' batch")

    @model_validator(mode="after")
    def _valid_cron(self) -> DigestSpec:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        from apscheduler.triggers.cron import CronTrigger

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r} (an IANA name such as Europe/Paris)") from None
        CronTrigger.from_crontab(self.cron, timezone=self.timezone)  # raises ValueError with the reason
        return self


class Config(Strict):
    bot: BotSpec = BotSpec()
    digest: DigestSpec = DigestSpec()
    serve: ServeSpec = ServeSpec()
    llm: LLMSpec = LLMSpec()
    chat: ChatSpec = ChatSpec()
    forge: ForgeSpec = ForgeSpec()
    repos: list[RepoSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _ci_needs_a_forge_with_ci(self) -> Config:
        for i, r in enumerate(self.repos):
            if r.verify == "ci" and self.forge.adapter != "github":
                raise ValueError(f"repos[{i}].verify = \"ci\" needs forge.adapter = \"github\" "
                                 "(the local forge has no CI)")
        return self

    @field_validator("repos")
    @classmethod
    def _unique_names(cls, repos: list[RepoSpec]) -> list[RepoSpec]:
        seen = set()
        for r in repos:
            if r.name in seen:
                raise ValueError(f"repository name {r.name!r} appears twice")
            seen.add(r.name)
        return repos

    def repo(self, name: str | None) -> RepoSpec:
        if name is None and len(self.repos) == 1:
            return self.repos[0]
        for r in self.repos:
            if r.name == name:
                return r
        raise BadInput(f"unknown repository {name!r}; configured: {', '.join(r.name for r in self.repos)}")


def _secret_keys(data: Any, path: str = "") -> list[tuple[str, str]]:
    found = []
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{path}.{k}" if path else str(k)
            if SECRET_KEY.search(str(k)):
                found.append((key, "secrets are not read from files; set it in the environment "
                                   f"({', '.join(SECRET_ENV_VARS)})"))
            found.extend(_secret_keys(v, key))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            found.extend(_secret_keys(v, f"{path}[{i}]"))
    return found


def _secret_values(data: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _secret_values(v, f"{path}.{k}" if path else str(k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _secret_values(v, f"{path}[{i}]")]
    if isinstance(data, str) and SECRET_VALUE.search(data):
        return [(path, "this looks like a credential; files never hold one: set it in the environment "
                       "(GITHUB_TOKEN for git over HTTPS: the bot sends it in a header)")]
    return []


def _checked_on_disk(config: Config) -> list[tuple[str, str]]:
    """What only the disk can tell: local repositories exist and have their branches; the data
    directory is a directory."""
    problems = []
    if config.bot.data_dir is not None and config.bot.data_dir.exists() and not config.bot.data_dir.is_dir():
        problems.append(("bot.data_dir", f"{config.bot.data_dir} is a file, not a directory"))
    for i, r in enumerate(config.repos):
        if r.path is None:
            continue
        if not r.path.is_dir():
            problems.append((f"repos[{i}].path", f"{r.path} does not exist"))
            continue
        git = Git(r.path)
        if not git.ok("rev-parse", "--git-dir"):
            problems.append((f"repos[{i}].path", f"{r.path} is not a git repository"))
            continue
        for branch in [r.main_branch, *(b.git_branch for b in r.branches)]:
            if not any(git.ok("show-ref", "--verify", "--quiet", ref)
                       for ref in (f"refs/heads/{branch}", f"refs/remotes/origin/{branch}")):
                problems.append((f"repos[{i}]", f"branch {branch!r} does not exist in {r.path}"))
    return problems


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse(text: str, source: str, base_dir: Path | None = None) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(source, [("(syntax)", str(e))]) from None
    except RecursionError:
        raise ConfigError(source, [("(syntax)", "arrays or tables nested too deeply")]) from None
    problems = _secret_keys(data) + _secret_values(data)
    if problems:
        raise ConfigError(source, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(source, [(_key_path(err["loc"]), err["msg"].removeprefix("Value error, "))
                                   for err in e.errors()]) from None
    if base_dir is not None:  # relative paths are relative to the config file
        repos = [r.model_copy(update={"path": base_dir / r.path}) if r.path and not r.path.is_absolute() else r
                 for r in config.repos]
        config = config.model_copy(update={"repos": repos})
        problems = _checked_on_disk(config)
        if problems:
            raise ConfigError(source, problems)
    return config


def load(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(str(path), [("(file)", e.strerror or str(e))]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [("(file)", f"not UTF-8 text (byte {e.start})")]) from None
    return parse(text, str(path), base_dir=path.parent.resolve())


def data_dir(cli_value: Path | None, config: Config | None = None) -> Path:
    """--data-dir, then BACKPORTBOT_HOME, then the config file, then ~/.local/share/backportbot."""
    if cli_value:
        return cli_value
    if env := os.environ.get("BACKPORTBOT_HOME"):
        return Path(env)
    if config and config.bot.data_dir:
        return config.bot.data_dir
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "backportbot"
