"""What the HTTP routes (GitHub webhooks, Slack's HTTP mode) share."""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError


async def body_of(request: web.Request) -> bytes | None:
    """The request's body, or None when it cannot be read (a Content-Encoding the body does not
    have, a connection cut short): the route answers 400, not 500 with a traceback."""
    try:
        return await request.read()
    except (RequestPayloadError, HttpProcessingError, ValueError, OSError):
        return None
