"""Every secret and endpoint the bot reads from the environment, read once, here (pydantic-settings),
and handed to the adapters that need them by the composition root. The config file never holds
one (bot.config refuses keys that look like secrets)."""

from __future__ import annotations

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
