"""Git over HTTPS to GitHub with the bot's token (a personal token, or a GitHub App installation
token renewed as it expires): fetch, ls-remote and push of a private repository all need it.

The token goes to git as an `Authorization` header through the environment (`GIT_CONFIG_*`), so
it is never in a URL, an argument, a file or a log, and it is scoped to GitHub's own host: a
remote elsewhere (a mirror, another forge) never receives it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import urlsplit


def web_host(api_url: str) -> str:
    """The host git talks to for an API URL: api.github.com -> github.com; an Enterprise
    Server's https://HOST/api/v3 -> HOST."""
    host = urlsplit(api_url).hostname or ""
    return host.removeprefix("api.") if host == "api.github.com" else host


class GitAuth:
    """The environment that gives git the token for the URLs it is about to reach."""

    def __init__(self, api_url: str, token: Callable[[], str]) -> None:
        self.host = web_host(api_url)
        self.token = token

    def env(self, *urls: str) -> dict[str, str]:
        prefixes: list[str] = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.hostname == self.host:
                prefix = f"{parts.scheme}://{parts.netloc}/"
                if prefix not in prefixes:
                    prefixes.append(prefix)
        if not prefixes:
            return {}
        basic = base64.b64encode(f"x-access-token:{self.token()}".encode()).decode()
        env = {"GIT_CONFIG_COUNT": str(len(prefixes))}
        for i, prefix in enumerate(prefixes):
            env[f"GIT_CONFIG_KEY_{i}"] = f"http.{prefix}.extraHeader"
            env[f"GIT_CONFIG_VALUE_{i}"] = f"Authorization: Basic {basic}"
        return env
