"""Interactions, raw reaction events and messages built from payload dicts as Discord sends them;
the client's HTTP pointed at a local server that records every call and answers as Discord does."""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
from pathlib import Path

import discord
import pytest

from bot import config
from bot.app import build_app
from tests import scenarios
from tests.fake_discord import FakeDiscord
from tests.gitrepo import published
from tests.test_console import non_fix

ADA, BOB, CAROL = "111", "222", "333"
MAINTAINER_ROLE = 777


@pytest.fixture
def discord_api(monkeypatch: pytest.MonkeyPatch):
    fake = FakeDiscord()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.url)
    monkeypatch.setenv("DISCORD_TOKEN", "discord-test-token")
    yield fake
    fake.close()


def setup(tmp_path: Path, scenario) -> Path:
    work, remote, _ = published(tmp_path, scenario)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["{ADA}"]\n\n[chat]\nadapters = ["discord"]\n'
                   f'[chat.discord]\nmaintainer_roles = [{MAINTAINER_ROLE}]\n\n'
                   f'[[repos]]\nname = "server"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')
    return cfg


def member(user: str, roles: list[int]) -> dict:
    return {"user": {"id": user, "username": f"user{user}", "discriminator": "0", "avatar": None,
                     "global_name": None}, "roles": [str(r) for r in roles], "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False, "mute": False, "flags": 0, "permissions": "0"}


def command(user: str, source: str, branches: str | None = None, roles: list[int] | None = None,
            interaction: str = "1001") -> dict:
    options = [{"name": "source", "type": 3, "value": source}]
    if branches:
        options.append({"name": "branches", "type": 3, "value": branches})
    token = "interaction-token" if interaction == "1001" else f"interaction-token-{interaction}"
    return {"id": interaction, "application_id": "999", "type": 2, "token": token, "version": 1,
            "channel_id": "500", "guild_id": "400", "locale": "en-US", "guild_locale": "en-US",
            "channel": {"id": "500", "type": 0, "guild_id": "400", "name": "dev", "position": 0,
                        "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
                        "last_message_id": None, "rate_limit_per_user": 0},
            "app_permissions": "0", "entitlements": [], "authorizing_integration_owners": {}, "context": 0,
            "attachment_size_limit": 26214400,
            "member": member(user, roles or []),
            "data": {"id": "3000", "name": "backport", "type": 1, "options": options}}


def reaction(user: str, message_id: str, emoji: str = "✅", channel: str = "500") -> discord.RawReactionActionEvent:
    """A reaction on a message in `channel` (a message in a thread: the thread's id)."""
    data = {"user_id": user, "channel_id": channel, "message_id": message_id, "guild_id": "400", "type": 0,
            "burst": False, "emoji": {"id": None, "name": emoji}}
    return discord.RawReactionActionEvent(data, discord.PartialEmoji(name=emoji), "REACTION_ADD")


def run(cfg: Path, data_dir: Path, steps: list) -> None:
    """A new app on `data_dir`, started, then stopped. Each step: an interaction payload dict, or a
    callable of the client's state returning an event to dispatch (a raw reaction, a message)."""

    async def go() -> None:
        console = build_app(config.load(cfg), data_dir, io.StringIO())
        bot = console.discord
        await bot.client.login("discord-test-token")  # GET /users/@me, as at start
        await console.start()
        try:
            for step in steps:
                if isinstance(step, dict):
                    interaction = discord.Interaction(data=step, state=bot.client._connection)
                    await bot.tree._call(interaction)
                else:
                    event = step(bot.client._connection)
                    name = "message" if isinstance(event, discord.Message) else "raw_reaction_add"
                    bot.client.dispatch(name, event)
                    await asyncio.sleep(0.05)
                await console.idle()
        finally:
            await console.stop()
            await bot.client.http.close()

    asyncio.run(go())


def contents(api: FakeDiscord, method: str, fragment: str) -> list[str]:
    return [body.get("content", "") for _, body in api.of(method, fragment) if isinstance(body, dict)]


def user(uid: str) -> dict:
    return {"id": uid, "username": f"user{uid}", "discriminator": "0", "avatar": None, "global_name": None}


def message(state, channel, mid: str, author: str, content: str, mentions: list[dict] = ()) -> discord.Message:
    data = {"id": mid, "channel_id": str(channel.id), "type": 0, "content": content, "author": user(author),
            "timestamp": "2026-11-21T10:00:00+00:00", "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": list(mentions), "mention_roles": [], "attachments": [],
            "embeds": [], "pinned": False, "flags": 0, "components": []}
    return discord.Message(state=state, channel=channel, data=data)


def db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "backportbot.db")


def test_a_deferred_command_opens_a_thread_and_edits_its_progress(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.context_moved)
    run(cfg, data_dir, [command(ADA, "14", "rel")])
    (callback,) = discord_api.of("POST", "/interactions/1001/interaction-token/callback")
    assert callback[1]["type"] == 5  # deferred: Discord's 3 seconds are met at once
    assert contents(discord_api, "POST", "/webhooks/999/interaction-token") == ["On it: `/backport 14 to rel`"]
    root_path, root = discord_api.of("POST", "/channels/500/messages")[0]
    assert root["content"].startswith("Backport of #14 Tighten the limit to rel, requested by <@111>.")  # a mention
    (thread,) = discord_api.of("POST", "/threads")
    root_id = thread[0].split("/")[4]
    in_thread = contents(discord_api, "POST", f"/channels/{root_id}/messages")
    assert in_thread[0] == "⏳ rel: queued…" and "Summary: 1 PR opened." in in_thread
    edits = contents(discord_api, "PATCH", f"/channels/{root_id}/messages/")
    assert edits[-1].startswith("✅ rel: PR opened: local://server/pull/1; conflicts: src/server.c (context-moved)")
    # Text from titles and people can hold @everyone or a role: Discord is never asked to parse
    # mentions; only the person the bot names, who asked, is notified (by the root message).
    sent = [body for method, path, body, _ in discord_api.calls
            if method in ("POST", "PATCH") and re.search(r"/messages(/\d+)?$", path)]
    assert sent and all(body["allowed_mentions"]["parse"] == [] for body in sent)
    assert {mid: who for mid, who in discord_api.pinged.items() if who} == {root_id: {ADA}}


def test_reactions_count_for_maintainers_by_id_or_role(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, non_fix)
    run(cfg, data_dir, [command(CAROL, "50", "rel", roles=[MAINTAINER_ROLE])])  # a maintainer by role
    approval = next(mid for mid, content in discord_api.created if content.startswith("✋ rel: waiting"))
    thread = discord_api.channel_of[approval]
    run(cfg, data_dir, [lambda _: reaction(BOB, approval, channel=thread),
                        lambda _: reaction(ADA, approval, channel=thread)])
    notes = contents(discord_api, "POST", "/messages")
    assert any(n.startswith(f"<@{BOB}> only maintainers' reactions count") for n in notes)
    note = next(mid for mid, content in discord_api.created if content.startswith(f"<@{BOB}> only maintainers"))
    assert discord_api.pinged[note] == {BOB}  # the one person the note is for
    edits = contents(discord_api, "PATCH", "/messages/")
    assert edits[-1].startswith("✅ rel: PR opened: local://server/pull/1")


def test_an_outsider_cannot_request_a_backport(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.clean)
    run(cfg, data_dir, [command(BOB, "12", "rel")])
    assert any("Sorry 222, only maintainers can request backports" in c
               for c in contents(discord_api, "POST", "/channels/500/messages"))
    assert discord_api.of("POST", "/threads") == []


def test_a_direct_message_asks_why(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.prerequisite)

    async def go() -> None:
        console = build_app(config.load(cfg), data_dir, io.StringIO())
        bot = console.discord
        await bot.client.login("discord-test-token")
        await console.start()
        try:
            interaction = discord.Interaction(data=command(ADA, "16", "rel"), state=bot.client._connection)
            await bot.tree._call(interaction)
            await console.idle()
            state = bot.client._connection
            user = {"id": BOB, "username": "bob", "discriminator": "0", "avatar": None, "global_name": None}
            channel = discord.DMChannel(me=bot.client.user, state=state,
                                        data={"id": "600", "type": 1, "recipients": [user], "last_message_id": None})
            data = {"id": "7001", "channel_id": "600", "type": 0, "content": "why did 16 fail on rel?",
                    "author": user, "timestamp": "2026-11-21T10:00:00+00:00", "edited_timestamp": None,
                    "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
                    "attachments": [], "embeds": [], "pinned": False, "flags": 0, "components": []}
            bot.client.dispatch("message", discord.Message(state=state, channel=channel, data=data))
            await asyncio.sleep(0.05)
        finally:
            await console.stop()
            await bot.client.http.close()

    asyncio.run(go())
    answers = contents(discord_api, "POST", "/channels/600/messages")
    assert answers and answers[0].startswith(
        "Backport of #16 to rel (attempt 1): failed at resolving conflicts (conflict).")


def test_a_restarted_bot_finds_the_thread_of_a_backport_waiting_for_approval(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, non_fix)
    run(cfg, data_dir, [command(ADA, "50", "rel")])
    ((path, _),) = discord_api.of("POST", "/threads", status=201)
    thread = path.split("/")[4]  # /channels/500/messages/{root}/threads: the thread is named by its root
    approval = next(mid for mid, content in discord_api.created if content.startswith("✋ rel: waiting"))
    assert discord_api.channel_of[approval] == thread
    before = len(discord_api.calls)

    # A new process: nothing in memory but the data directory.
    run(cfg, data_dir, [lambda _: reaction(ADA, approval, channel=thread)])
    after = discord_api.calls[before:]
    edits = [(path, body["content"], status) for verb, path, body, status in after if verb == "PATCH"]
    assert edits and all(path.startswith(f"/channels/{thread}/messages/") and status == 200
                         for path, _, status in edits)
    assert edits[-1][1].startswith("✅ rel: PR opened: local://server/pull/1")
    in_thread = [body["content"] for verb, path, body, status in after
                 if verb == "POST" and path == f"/channels/{thread}/messages" and status == 200]
    assert "Summary: 1 PR opened." in in_thread
    assert not [path for _, path, _, _ in after if path.endswith("/threads")]  # found, not started again


def test_a_command_where_the_bot_may_not_post_is_answered_privately(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.clean)
    discord_api.forbidden.add("500")
    discord_api.ack_latency = 0.3  # the refusal of an outsider is ready before Discord has the acknowledgement
    run(cfg, data_dir, [command(ADA, "12", "rel"), command(BOB, "12", "rel", interaction="1002")])
    assert discord_api.of("POST", "/channels/500/messages", status=403)  # it tried, Discord refused
    ephemeral = {path.split("/")[3]: body["content"] for path, body in discord_api.of("POST", "/webhooks/999/")
                 if body.get("flags") == 64}
    assert set(ephemeral) == {"interaction-token", "interaction-token-1002"}
    assert all(text.startswith("I can't post in this channel") and "Send Messages" in text
               for text in ephemeral.values())
    assert "only maintainers can request backports" in ephemeral["interaction-token-1002"]
    # Each command's first follow-up is its public "On it" (it takes the place of "thinking…"), and
    # none was sent before the command was acknowledged.
    follow_ups = [(path, body, status) for _, path, body, status in discord_api.calls if path.startswith("/webhooks/")]
    assert all(status == 200 for _, _, status in follow_ups)
    for token in ephemeral:
        first = next(body for path, body, _ in follow_ups if path.endswith(f"/{token}"))
        assert first["content"].startswith("On it") and not first.get("flags")
    assert discord_api.of("POST", "/users/@me/channels") == []  # the follow-up was enough: no DM
    with db(data_dir) as conn:
        assert conn.execute("select count(*) from requests").fetchone() == (0,)
        assert conn.execute("select count(*) from attempts").fetchone() == (0,)
        assert conn.execute("select state, reply from inbox where source = 'discord'").fetchall() == \
            [("handled", None), ("handled", None)]


def test_a_mention_where_the_bot_may_not_post_is_answered_by_direct_message(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.clean)
    discord_api.forbidden.add("500")

    def mention(state) -> discord.Message:
        channel = discord.PartialMessageable(state=state, id=500, guild_id=400, type=discord.ChannelType.text)
        return message(state, channel, "7002", BOB, "<@999> help", mentions=[user("999")])

    run(cfg, data_dir, [mention])
    refused = contents(discord_api, "POST", "/channels/500/messages")
    assert any(text.startswith(f"<@{BOB}> I can't post in this channel") for text in refused)  # tried there first
    ((_, opened),) = discord_api.of("POST", "/users/@me/channels")
    assert str(opened["recipient_id"]) == BOB
    dm = next(iter(discord_api.dm_channels))
    (answer,) = contents(discord_api, "POST", f"/channels/{dm}/messages")
    assert answer.startswith("I can't post in this channel") and "Send Messages" in answer


def test_a_command_is_stored_before_it_is_deferred(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.clean)
    stored_at_defer: list[list[tuple[str]]] = []

    def look(verb: str, path: str) -> None:
        if path.endswith("/callback"):  # the defer: Discord now takes the command as received
            with db(data_dir) as conn:
                stored_at_defer.append(conn.execute("select key from inbox where source = 'discord'").fetchall())

    discord_api.on_call = look
    run(cfg, data_dir, [command(ADA, "help")])
    assert stored_at_defer == [[("interaction:1001",)]]


def test_a_reaction_taken_back_and_given_again_counts_again(tmp_path, data_dir, discord_api):
    cfg = setup(tmp_path, scenarios.prerequisite)
    run(cfg, data_dir, [command(ADA, "16", "rel")])
    progress = next(mid for mid, content in discord_api.created if content.startswith("⏳ rel: queued"))
    thread = discord_api.channel_of[progress]
    retry = lambda _: reaction(ADA, progress, "🔁", channel=thread)  # noqa: E731
    run(cfg, data_dir, [retry, retry])  # 🔁, removed, 🔁 again: Discord sends the same event twice
    with db(data_dir) as conn:
        assert conn.execute("select count(*) from attempts").fetchone() == (3,)


def test_markdown_in_a_commit_title_is_shown_not_applied(tmp_path, data_dir, discord_api):
    """A title with a masked link, emphasis and a spoiler: shown literally; the bot's code spans stay."""
    def hostile(repo) -> str:
        scenarios.base(repo)
        repo.commit("Fix [the docs](https://evil.example) **now** ||x|| (#12)",
                    {"src/server.c": scenarios.fixed(scenarios.SERVER, "return -1;", "return 0;")})
        return "#12"

    cfg = setup(tmp_path, hostile)
    run(cfg, data_dir, [command(ADA, "12", "rel")])
    assert contents(discord_api, "POST", "/webhooks/999/interaction-token") == ["On it: `/backport 12 to rel`"]
    root = discord_api.of("POST", "/channels/500/messages")[0][1]["content"]
    assert root.startswith(r"Backport of #12 Fix \[the docs](https://evil.example) \*\*now\*\* \|\|x\|\| to rel,")


def test_the_invite_permissions_in_the_readme_are_what_the_bot_needs():
    from adapters.chat.discord import PERMISSIONS

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    (integer,) = re.findall(r"discord\.com/oauth2/authorize\?[^`]*permissions=(\d+)", readme)
    assert int(integer) == PERMISSIONS.value
    listed = {"view_channel": "View Channels", "send_messages": "Send Messages",
              "send_messages_in_threads": "Send\nMessages in Threads", "create_public_threads": "Create Public Threads",
              "read_message_history": "Read Message History"}
    assert {name for name, granted in PERMISSIONS if granted} == {"read_messages", *listed} - {"view_channel"}
    prose = readme[readme.index("invite it with the scopes"):readme.index("(reading reactions")]
    assert all(f"*{words.replace(chr(10), ' ')}*" in prose.replace("\n", " ") for words in listed.values())


def test_github_activity_is_mirrored_to_the_discord_channel(tmp_path, data_dir, discord_api, monkeypatch):
    """A backport requested by a PR label on GitHub shows up in `[chat.discord] channel` too."""
    import json

    import aiohttp
    from aiohttp import web

    from adapters.forge.github_webhook import signature
    from tests.fake_github import FakeGitHub
    from tests.test_github_webhooks import merged

    github = FakeGitHub()
    github.permissions = {"ada": "admin"}  # who merged and labelled it may request backports
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_testtoken123")
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "whsec")
    work, remote, _ = published(tmp_path, scenarios.clean)
    github.add_merged_pull(12, "Fix overflow in handle", work.head("main"), ["bug", "backport/rel"])
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["{ADA}"]\n\n[chat]\nadapters = ["discord"]\n[chat.discord]\n'
                   f'channel = "600"\n\n[forge]\nadapter = "github"\n\n[[repos]]\nname = "server"\n'
                   f'github = "acme/server"\nurl = "{remote.as_uri()}"\nbranches = [{{ name = "rel" }}]\n')

    async def go() -> None:
        console = build_app(config.load(cfg), data_dir, io.StringIO())
        await console.discord.client.login("discord-test-token")
        await console.start()
        app = web.Application()
        app.add_routes(console.webhook.routes())
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        body = json.dumps(merged(12, ["bug", "backport/rel"])).encode()
        try:
            async with aiohttp.ClientSession() as http:
                headers = {"X-GitHub-Delivery": "m-1", "X-GitHub-Event": "pull_request",
                           "X-Hub-Signature-256": signature("whsec", body), "Content-Type": "application/json"}
                async with http.post(f"http://127.0.0.1:{runner.addresses[0][1]}/github/webhook", data=body,
                                     headers=headers) as response:
                    assert response.status == 202
            await console.idle()
        finally:
            await runner.cleanup()
            await console.stop()
            await console.discord.client.http.close()

    try:
        asyncio.run(go())
    finally:
        github.close()
    mirrored = contents(discord_api, "POST", "/channels/600/messages")
    assert mirrored[0] == "[github:acme/server#12] Backport of #12 Fix overflow in handle to rel, requested by ada."
    assert "[github:acme/server#12] Summary: 1 PR opened." in mirrored  # its progress, to the end
    edits = contents(discord_api, "PATCH", "/channels/600/messages/")
    assert edits[-1] == "[github:acme/server#12] ✅ rel: PR opened: https://github.com/acme/server/pull/1000"
    posted = [mid for mid, channel in discord_api.channel_of.items() if channel == "600"]
    assert posted and all(discord_api.pinged[mid] == set() for mid in posted)  # a GitHub login is no Discord user


def test_only_the_people_the_bot_names_are_notified(tmp_path, data_dir, discord_api):
    """A title holding a user's and a role's mention and @everyone: shown as text, nobody pinged;
    "requested by" is a real mention of the person who asked, and notifies only them."""
    def hostile(repo) -> str:
        scenarios.base(repo)
        repo.commit(f"Fix <@{BOB}> and <@&{MAINTAINER_ROLE}> for @everyone (#12)",
                    {"src/server.c": scenarios.fixed(scenarios.SERVER, "return -1;", "return 0;")})
        return "#12"

    cfg = setup(tmp_path, hostile)
    run(cfg, data_dir, [command(ADA, "12", "rel")])
    root_id, root = discord_api.created[1]  # after the "On it" follow-up
    assert root == (rf"Backport of #12 Fix \<@{BOB}> and \<@&{MAINTAINER_ROLE}> for @everyone to rel, "
                    f"requested by <@{ADA}>.")
    assert discord_api.pinged[root_id] == {ADA}
    assert all(who == set() for mid, who in discord_api.pinged.items() if mid != root_id)


def test_discord_refuses_allowed_mentions_that_both_parse_and_list_users(discord_api):
    """The stand-in answers as Discord does; the adapter's words for it name the error."""
    from discord.http import Route

    from adapters.chat.discord import call

    async def go() -> str:
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        await http.static_login("discord-test-token")
        try:
            await call(http.request(Route("POST", "/channels/{c}/messages", c=500),
                                    json={"content": f"<@{ADA}>", "allowed_mentions": {"parse": ["users"],
                                                                                       "users": [ADA]}}))
        except Exception as e:  # the words are what is checked
            return str(e)
        finally:
            await http.close()
        return "accepted"

    words = asyncio.run(go())
    assert words.startswith("Discord answered 400") and "50035" in words, words
    assert discord_api.pinged == {}
