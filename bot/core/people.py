"""People named in the bot's messages ("requested by ...") as each chat shows a person: Slack
`<@U123>`, Discord `<@123>`, the console a plain name. The core writes `mention(user)`; the chat
adapter, after escaping everything else, turns those marks into its syntax with `show`. The mark
carries a random key of this process, so text from a title or a person cannot forge one."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

_KEY = secrets.token_hex(8)
_MARK = re.compile(rf"\u2063{_KEY}:([^\u2063\s]{{1,64}})\u2063")


def mention(user: str) -> str:
    return f"\u2063{_KEY}:{user}\u2063"


def show(text: str, render: Callable[[str], str]) -> str:
    """`text` with every person the core named rendered by `render(user)`."""
    return _MARK.sub(lambda m: render(m.group(1)), text)


def plain(text: str) -> str:
    return show(text, lambda user: user)
