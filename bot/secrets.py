"""Every secret and endpoint the bot reads from the environment, read once, here (pydantic-settings),
and handed to the adapters that need them by the composition root. The config file never holds
one (bot.config refuses keys that look like secrets)."""

from __future__ import annotations

import ctypes
import logging
import os

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Secrets(BaseSettings):
    """Environment variables by their upper-case names (SLACK_BOT_TOKEN, ...)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode
    slack_signing_secret: SecretStr | None = None  # HTTP mode
    slack_api_url: str | None = None  # GovSlack, proxies
    discord_token: SecretStr | None = None
    github_token: SecretStr | None = None
    github_app_id: str | None = None
    github_app_private_key: SecretStr | None = None
    github_app_installation_id: str | None = None
    github_webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"  # Enterprise Server: https://HOST/api/v3
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None


# The variables that hold secrets: never passed to a fix's build and test commands.
SECRET_ENV_VARS = tuple(name.upper() for name, f in Secrets.model_fields.items()
                        if f.annotation is not None and "SecretStr" in str(f.annotation))


def value(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def without_secrets(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for code that is not the bot's own."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in SECRET_ENV_VARS}


PR_SET_DUMPABLE = 4


def harden() -> None:
    """Once the secrets are read: the process is made non-dumpable (its /proc files, environ among
    them, become root's, and processes of the same user cannot ptrace it), and the secrets leave
    os.environ so that nothing started later inherits or reads them there."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass
    for name in SECRET_ENV_VARS:
        os.environ.pop(name, None)


class Redactor:
    """Replaces every known secret value in a text: applied to what is stored, posted and logged."""

    MASK = "[redacted]"

    def __init__(self, secrets: Secrets) -> None:
        found = (value(getattr(secrets, name.lower())) for name in SECRET_ENV_VARS)
        # Longest first, so that a secret containing another is masked whole; short values are not
        # secrets worth the false positives.
        self.values = sorted({v for v in found if v and len(v) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.values:
            if secret in text:
                text = text.replace(secret, self.MASK)
        return text


class RedactingFilter(logging.Filter):
    """A logging filter: the formatted message (and a traceback's text) without secrets."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
