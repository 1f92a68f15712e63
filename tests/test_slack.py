"""The real Bolt app receiving signed HTTP requests; its Web API client pointed at a local Slack
Web API server that records every call with its body."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot import config
from bot.app import build_app, start_servers
from tests import scenarios
from tests.fake_slack import FakeSlack
from tests.gitrepo import published
from tests.test_console import non_fix

SECRET = "slack-signing-secret"
ROOT = Path(__file__).parent.parent


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch):
    fake = FakeSlack()
    monkeypatch.setenv("SLACK_API_URL", fake.url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    yield fake
    fake.close()


def setup(tmp_path: Path, scenario) -> Path:
    work, remote, _ = published(tmp_path, scenario)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["UADA"]\n\n[serve]\nport = 0\n\n[chat]\nadapters = ["slack"]\n'
                   f'[chat.slack]\nmode = "http"\n\n[[repos]]\nname = "server"\nurl = "{remote.as_uri()}"\n'
                   f'branches = [{{ name = "rel" }}]\n')
    return cfg


def signed(body: str, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp or int(time.time()))
    return {"X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)}


def slash(text: str, user: str = "UADA") -> tuple[str, str]:
    return urlencode({"command": "/backport", "text": text, "user_id": user, "user_name": user.lower(),
                      "channel_id": "CDEV", "team_id": "T1", "trigger_id": "1.2", "token": "x",
                      "response_url": "http://127.0.0.1:9/response"}), "application/x-www-form-urlencoded"


def event(inner: dict, event_id: str) -> tuple[str, str]:
    return json.dumps({"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event_id": event_id,
                       "event_time": int(time.time()), "event": inner}), "application/json"


def approve(slack: FakeSlack, user: str, event_id: str):
    """A ✅ by `user` on the approval message, built once that message exists."""
    def build(answers):
        approval = next(args for args in slack.of("chat.postMessage") if args["text"].startswith("✋"))
        return event({"type": "reaction_added", "user": user, "reaction": "white_check_mark",
                      "item": {"type": "message", "channel": "CDEV", "ts": approval["__ts"]},
                      "event_ts": "1.0"}, event_id)
    return build


def converse(cfg: Path, data_dir: Path, requests: list) -> list[tuple[int, str]]:
    """Each request: (body, content type[, extra headers]) or a callable of the answers so far."""

    async def run() -> list[tuple[int, str]]:
        console = build_app(config.load(cfg), data_dir, io.StringIO())
        await console.start()
        out = io.StringIO()
        stops = await start_servers(console, config.load(cfg), out)
        port = re.search(r":(\d+) ", out.getvalue()).group(1)
        answers: list[tuple[int, str]] = []
        try:
            async with aiohttp.ClientSession() as http:
                for item in requests:
                    body, kind, *extra = item(answers) if callable(item) else item
                    headers = {"Content-Type": kind, **signed(body), **(extra[0] if extra else {})}
                    async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body.encode(),
                                         headers=headers) as response:
                        answers.append((response.status, await response.text()))
                    pass
                    await console.idle()
        finally:
            for stop in stops:
                await stop()
            await console.stop()
        return answers

    return asyncio.run(run())


def texts(slack: FakeSlack, method: str) -> list[str]:
    return [args.get("text", "") for args in slack.of(method)]


def test_slash_command_acks_then_reports_in_a_thread(tmp_path, data_dir, slack):
    cfg = setup(tmp_path, scenarios.context_moved)
    (answer,) = converse(cfg, data_dir, [slash("14 to rel")])
    assert answer[0] == 200 and "On it" in answer[1]
    root, *replies = slack.of("chat.postMessage")
    assert root["channel"] == "CDEV" and root.get("thread_ts") is None
    assert root["text"].startswith("Backport of #14 Tighten the limit to rel, requested by <@UADA>.")  # a mention
    thread = {r.get("thread_ts") for r in replies}
    assert len(thread) == 1 and None not in thread
    edits = texts(slack, "chat.update")
    assert edits[-1].startswith("✅ rel: PR opened: local://server/pull/1; conflicts: src/server.c (context-moved)")
    assert edits[-1] in json.dumps(slack.of("chat.update")[-1]["blocks"], ensure_ascii=False)
    assert "Summary: 1 PR opened." in texts(slack, "chat.postMessage")


def test_forged_and_stale_signatures_are_rejected(tmp_path, data_dir, slack):
    cfg = setup(tmp_path, scenarios.clean)
    body, kind = slash("12 to rel")
    forged = (body, kind, signed(body, secret="wrong"))
    stale = (body, kind, signed(body, timestamp=int(time.time()) - 600))
    answers = converse(cfg, data_dir, [forged, stale])
    assert [status for status, _ in answers] == [401, 401]
    assert slack.of("chat.postMessage") == []


def test_approval_by_reaction_counts_only_maintainers_and_their_group(tmp_path, data_dir, slack):
    cfg = setup(tmp_path, non_fix)

    slack.groups = {"SMAINT": ["UCAROL"]}
    cfg.write_text(cfg.read_text().replace('mode = "http"', 'mode = "http"\nmaintainer_group = "SMAINT"'))
    converse(cfg, data_dir, [slash("50 to rel"), approve(slack, "UBOB", "Ev1"), approve(slack, "UCAROL", "Ev2")])
    approval = next(args for args in slack.of("chat.postMessage") if args["text"].startswith("✋"))
    assert [e["type"] for e in approval["blocks"][1]["elements"]] == ["button"] * 3
    (note,) = slack.of("chat.postEphemeral")
    assert note["user"] == "UBOB" and "only maintainers' reactions count" in note["text"]
    assert texts(slack, "chat.update")[-1].startswith("✅ rel: PR opened: local://server/pull/1")


def test_a_retried_event_is_handled_once_and_429_is_waited_out(tmp_path, data_dir, slack):
    cfg = setup(tmp_path, scenarios.prerequisite)
    mention = event({"type": "app_mention", "user": "UADA", "text": "<@UBOT> backport 16 to rel",
                     "channel": "CDEV", "ts": "5.0", "event_ts": "5.0"}, "EvMention")
    slack.rate_limit_once.add("chat.postMessage")
    retried = (*mention, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    why = event({"type": "app_mention", "user": "UBOB", "text": "<@UBOT> why did 16 fail on rel?",
                 "channel": "CDEV", "ts": "6.0", "event_ts": "6.0"}, "EvWhy")
    answers = converse(cfg, data_dir, [mention, retried, why])
    assert [status for status, _ in answers] == [200, 200, 200]
    roots = [t for t in texts(slack, "chat.postMessage") if t.startswith("Backport of #16")]
    assert len(roots) == 2  # the request's root, and the answer to "why" (handled once each)
    assert ("chat.postMessage (429)", ) == tuple(m for m, _ in slack.calls if "429" in m)
    assert any("Add a limit parameter to handle (#10)" in t for t in texts(slack, "chat.postMessage"))


def test_approval_by_button_and_throttled_edits(tmp_path, data_dir, slack):
    cfg = setup(tmp_path, non_fix)

    def press(answers):
        approval = next(args for args in slack.of("chat.postMessage") if args["text"].startswith("✋"))
        payload = {"type": "block_actions", "user": {"id": "UADA"}, "team": {"id": "T1"}, "api_app_id": "A1",
                   "token": "x", "trigger_id": "1.2", "channel": {"id": "CDEV"}, "container": {"type": "message"},
                   "message": {"ts": approval["__ts"], "thread_ts": approval.get("thread_ts"), "text": "✋"},
                   "actions": [{"type": "button", "action_id": "backport_approve", "value": "approve",
                                "block_id": "b", "action_ts": "1.0"}]}
        return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"

    started = time.monotonic()
    converse(cfg, data_dir, [slash("50 to rel"), press])
    assert texts(slack, "chat.update")[-1].startswith("✅ rel: PR opened: local://server/pull/1")
    # one progress message, edited several times: never twice within a second
    updates = slack.of("chat.update")
    assert len(updates) >= 2 and time.monotonic() - started >= len(updates) - 1


def test_socket_mode_receives_a_slash_command_and_acks_it(tmp_path, data_dir, slack, monkeypatch):
    """Slack's side of Socket Mode played by a local websocket server."""
    from aiohttp import WSMsgType, web

    cfg = setup(tmp_path, scenarios.clean)
    cfg.write_text(cfg.read_text().replace('mode = "http"', 'mode = "socket"'))
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    acks: list[dict] = []

    async def run() -> None:
        done = asyncio.Event()

        async def link(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {"host": "local"}})
            command = {"command": "/backport", "text": "12 to rel", "user_id": "UADA", "channel_id": "CDEV",
                       "team_id": "T1", "trigger_id": "1.2", "response_url": "http://127.0.0.1:9/r", "token": "x"}
            await ws.send_json({"envelope_id": "env-1", "type": "slash_commands", "payload": command,
                                "accepts_response_payload": True, "retry_attempt": 0, "retry_reason": ""})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    acks.append(json.loads(msg.data))
                    done.set()
            return ws

        app = web.Application()
        app.add_routes([web.get("/link", link)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        slack.socket_url = f"ws://127.0.0.1:{runner.addresses[0][1]}/link"
        console = build_app(config.load(cfg), data_dir, io.StringIO())
        await console.start()
        stops = await start_servers(console, config.load(cfg), io.StringIO())
        try:
            await asyncio.wait_for(done.wait(), 10)
            for _ in range(100):
                await asyncio.sleep(0.05)
                pass
                await console.idle()
                if any(t.startswith("Summary") for t in texts(slack, "chat.postMessage")):
                    break
        finally:
            for stop in stops:
                await stop()
            await console.stop()
            await runner.cleanup()

    asyncio.run(run())
    assert acks[0]["envelope_id"] == "env-1" and "On it" in json.dumps(acks[0])
    assert "Summary: 1 PR opened." in texts(slack, "chat.postMessage")


def test_text_from_titles_and_people_is_shown_not_acted_on(slack):
    """`<!channel>` in a PR title must not ping the channel; `<url|text>` must not become a link."""
    from adapters.chat.slack import SlackChat, client

    async def post() -> None:
        chat = SlackChat(client("xoxb-test-token", slack.url))
        await chat.post("CDEV", "Backport of #1 Fix <!channel> & <https://evil.example|docs>")

    asyncio.run(post())
    (sent,) = slack.of("chat.postMessage")
    assert sent["text"] == "Backport of #1 Fix &lt;!channel&gt; &amp; &lt;https://evil.example|docs&gt;"
    assert "<!channel>" not in json.dumps(sent["blocks"])


def test_malformed_bodies_get_4xx_never_a_traceback(tmp_path, data_dir, slack):
    cfg = setup(tmp_path, scenarios.clean)
    bodies = [("payload=notjson", "application/x-www-form-urlencoded"), ("{", "application/json"),
              ("[1,2]", "application/json"), ("null", "application/json")]
    unsigned = [(body, kind, {"X-Slack-Signature": "v0=" + "0" * 64}) for body, kind in bodies]
    answers = converse(cfg, data_dir, [*bodies, *unsigned])
    assert [status for status, _ in answers] == [400] * len(bodies) + [401] * len(unsigned), answers
    assert not any("Traceback" in text or "Internal Server Error" in text for _, text in answers)


def test_signed_requests_missing_what_slack_always_sends_get_400_and_bad_timestamps_401(tmp_path, data_dir, slack,
                                                                                          caplog):
    """Found by replaying an attack set: these were 500s with tracebacks in the log."""
    cfg = setup(tmp_path, scenarios.clean)
    form = "application/x-www-form-urlencoded"
    no_user = urlencode({"command": "/backport", "text": "help", "channel_id": "CDEV", "trigger_id": "1"})
    button = {"type": "block_actions", "user": {"id": "UADA"}, "trigger_id": "2", "container": {},
              "actions": [{"action_id": "backport_approve", "value": "nuke", "action_ts": "1"}]}
    malformed = [(no_user, form),
                 (*event({"type": "app_mention", "channel": "CDEV", "text": "help"}, "Ev1"),),
                 (*event({"type": "app_mention", "user": "UADA", "channel": "CDEV", "text": ["help"]}, "Ev2"),),
                 (*event({"type": "reaction_added", "user": "UADA", "reaction": "x", "item": "zzz"}, "Ev3"),),
                 (urlencode({"payload": json.dumps(button)}), form),
                 (urlencode({"payload": json.dumps({**button, "actions": []})}), form)]
    bad_time = [(*slash("help"), {"X-Slack-Request-Timestamp": stamp}) for stamp in ("now", "1700000000.5", "9" * 400)]
    bad_time.append((*slash("help"), {"Content-Encoding": "gzip", "X-Slack-Signature": "v0=" + "0" * 64}))
    answers = converse(cfg, data_dir, [*malformed, *bad_time])
    assert [status for status, _ in answers] == [400] * len(malformed) + [401] * len(bad_time), answers
    assert "Traceback" not in caplog.text
    assert slack.calls == []  # nothing was acted on


def test_only_the_people_the_bot_names_become_mentions():
    """`requested by` renders a Slack mention; a title that imitates one (even with the mark's
    invisible separators) stays text."""
    from adapters.chat.slack import escape
    from bot.core.people import mention

    assert escape(f"requested by {mention('UADA')}.") == "requested by <@UADA>."
    assert escape(f"by {mention('octocat')}") == "by octocat"  # a GitHub login is no Slack user
    forged = "Fix \u2063deadbeefdeadbeef:U0BOSS\u2063 <@U0BOSS>"
    assert escape(forged) == "Fix \u2063deadbeefdeadbeef:U0BOSS\u2063 &lt;@U0BOSS&gt;"


def test_a_change_of_the_maintainer_group_counts_at_once(tmp_path, data_dir, slack):
    """Slack's `subteam_members_changed` updates the group without waiting for the next read."""
    cfg = setup(tmp_path, scenarios.clean)
    cfg.write_text(cfg.read_text().replace('maintainers = ["UADA"]', "maintainers = []")
                   .replace('mode = "http"', 'mode = "http"\nmaintainer_group = "SMAINT"'))
    slack.groups = {"SMAINT": ["UADA"]}
    changed = {"type": "subteam_members_changed", "subteam_id": "SMAINT", "team_id": "T1",
               "date_previous_update": 1446670362, "date_update": 1492906952, "added_users": ["UCAROL"],
               "added_users_count": "1", "removed_users": ["UADA"], "removed_users_count": "1", "event_ts": "1.0"}
    again, kind = slash("12 to rel", "UCAROL")
    answers = converse(cfg, data_dir, [slash("12 to rel", "UCAROL"), event(changed, "Ev9"),
                                       (again.replace("trigger_id=1.2", "trigger_id=1.3"), kind)])
    assert [status for status, _ in answers] == [200, 200, 200]
    roots = [t for t in texts(slack, "chat.postMessage") if t.startswith("Backport of #12")]
    assert roots == ["Backport of #12 Fix overflow in handle to rel, requested by <@UCAROL>."]
    assert len(slack.of("usergroups.users.list")) == 1  # read once; the event did the rest


# The scope each Web API method and event the adapter uses needs (Slack's method and event pages).
SCOPES = {"chat_postMessage": "chat:write", "chat_update": "chat:write", "chat_postEphemeral": "chat:write",
          "usergroups_users_list": "usergroups:read", "app_mention": "app_mentions:read", "message": "im:history",
          "reaction_added": "reactions:read", "reaction_removed": "reactions:read",
          "subteam_members_changed": "usergroups:read", "/backport": "commands"}


@pytest.mark.parametrize("mode", ["socket", "http"])
def test_the_app_manifests_grant_what_the_adapter_uses_and_nothing_more(mode):
    source = (ROOT / "adapters" / "chat" / "slack.py").read_text()
    called = set(re.findall(r'call\(self\.web, "(\w+)"', source)) | set(re.findall(r"web\.(usergroups_\w+)\(", source))
    handled = set(re.findall(r'@app\.(?:event|command)\("([^"]+)"\)', source))
    manifest = json.loads((ROOT / "config" / f"slack-manifest.{mode}.json").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert called and handled and {SCOPES[name] for name in called | handled} == scopes
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.im" if e == "message" else e for e in handled if not e.startswith("/")} == events
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/backport"]
    home = manifest["features"]["app_home"]
    assert home["messages_tab_enabled"] and not home["messages_tab_read_only_enabled"]  # people can DM the bot
    assert manifest["settings"]["socket_mode_enabled"] is (mode == "socket")
    urls = [manifest["settings"]["event_subscriptions"].get("request_url"),
            manifest["settings"]["interactivity"].get("request_url"),
            manifest["features"]["slash_commands"][0].get("url")]
    assert urls == ([None] * 3 if mode == "socket" else ["https://YOUR-HOST/slack/events"] * 3)


def manifest_scopes() -> set[str]:
    (socket, http) = (json.loads((ROOT / "config" / f"slack-manifest.{mode}.json").read_text())
                      for mode in ("socket", "http"))
    assert socket["oauth_config"] == http["oauth_config"]  # one app, two ways to reach it
    return set(socket["oauth_config"]["scopes"]["bot"])


def test_the_manifest_scopes_are_enough_for_a_whole_conversation(tmp_path, data_dir, slack):
    """The stand-in grants the bot token the manifest's scopes only, and answers `missing_scope`
    as Slack does to anything else: a request, a DM, a mention, a refused and an accepted
    approval, the maintainer group, an ephemeral note and edits all work with them."""
    slack.scopes = manifest_scopes()
    slack.groups = {"SMAINT": ["UCAROL"]}
    cfg = setup(tmp_path, non_fix)
    cfg.write_text(cfg.read_text().replace('mode = "http"', 'mode = "http"\nmaintainer_group = "SMAINT"'))

    dm = event({"type": "message", "channel_type": "im", "user": "UBOB", "text": "help", "channel": "DBOB",
                "ts": "7.0", "event_ts": "7.0"}, "EvDm")
    mention = event({"type": "app_mention", "user": "UBOB", "text": "<@UBOT> status 50", "channel": "CDEV",
                     "ts": "8.0", "event_ts": "8.0"}, "EvMention")
    answers = converse(cfg, data_dir, [slash("50 to rel"), dm, mention, approve(slack, "UBOB", "Ev1"),
                                       approve(slack, "UCAROL", "Ev2")])
    assert [status for status, _ in answers] == [200] * 5
    assert [m for m, _ in slack.calls if "missing_scope" in m] == []
    assert {"chat.postMessage", "chat.update", "chat.postEphemeral", "usergroups.users.list"} <= \
        {m for m, _ in slack.calls}
    assert any(args["channel"] == "DBOB" for args in slack.of("chat.postMessage"))  # the DM was answered
    assert texts(slack, "chat.update")[-1].startswith("✅ rel: PR opened: local://server/pull/1")


def test_a_scope_the_app_lacks_is_answered_in_words(tmp_path, data_dir, slack):
    """Without chat:write Slack answers `missing_scope`; the person who asked hears why through the
    slash command's response_url, which needs no scope."""
    slack.scopes = manifest_scopes() - {"chat:write"}
    cfg = setup(tmp_path, scenarios.clean)
    body, kind = slash("12 to rel")
    body = body.replace(urlencode({"response_url": "http://127.0.0.1:9/response"}),
                        urlencode({"response_url": slack.response_url("r1")}))
    (answer,) = converse(cfg, data_dir, [(body, kind)])
    assert answer[0] == 200
    assert [m for m, _ in slack.calls if "missing_scope" in m][0] == "chat.postMessage (missing_scope)"
    ((name, said),) = slack.responses
    assert name == "r1" and "missing_scope" in said["text"] and "scopes" in said["text"]


def test_the_maintainer_group_is_read_again_once_its_time_is_up(slack):
    """The periodic read, the fallback for a `subteam_members_changed` missed while the bot was down."""
    from adapters.chat.slack import GroupMaintainers, client

    async def go() -> list[bool | None]:
        group = GroupMaintainers(client("xoxb-test-token", slack.url), "SMAINT", ttl=0.2)
        slack.groups = {"SMAINT": ["UADA"]}
        seen = [await group.check("UADA"), await group.check("UBOB")]
        slack.groups = {"SMAINT": ["UBOB"]}  # changed in Slack; no event reaches the bot
        seen.append(await group.check("UBOB"))  # not yet: the list is fresh
        await asyncio.sleep(0.3)
        seen.append(await group.check("UBOB"))  # answered from the list it has; a read starts
        assert group._reading is not None
        await group._reading
        return [*seen, await group.check("UBOB"), await group.check("UADA")]

    assert asyncio.run(go()) == [True, None, None, None, True, None]
    assert len(slack.of("usergroups.users.list")) == 2


def test_a_membership_change_heard_during_a_read_is_kept(slack):
    """A read that Slack answers from before an event must not undo the event."""
    from adapters.chat.slack import GroupMaintainers, client

    changed = {"type": "subteam_members_changed", "subteam_id": "SMAINT", "team_id": "T1",
               "date_previous_update": 1, "date_update": 2, "added_users": ["UCAROL"], "added_users_count": "1",
               "removed_users": ["UADA"], "removed_users_count": "1", "event_ts": "1.0"}

    async def go() -> list[bool | None]:
        group = GroupMaintainers(client("xoxb-test-token", slack.url), "SMAINT", ttl=0)
        slack.groups = {"SMAINT": ["UADA"]}
        await group.check("UADA")
        slack.delay = 0.3  # the next read is slow, and Slack answers it with the list before the change
        await asyncio.sleep(0.01)
        await group.check("UADA")  # starts the read
        await asyncio.sleep(0.1)
        group.changed(changed)
        group.changed({**changed, "subteam_id": "SOTHER", "added_users": ["UBOB"]})  # another group's
        assert group._reading is not None
        await group._reading
        slack.delay = 0
        group.ttl = 60
        return [await group.check(user) for user in ("UCAROL", "UADA", "UBOB")]

    assert asyncio.run(go()) == [True, None, None]


def test_an_unknown_group_leaves_the_configured_maintainers_in_charge(slack, caplog):
    from adapters.chat.slack import GroupMaintainers, client

    async def go() -> bool | None:
        return await GroupMaintainers(client("xoxb-test-token", slack.url), "SNOPE").check("UADA")

    assert asyncio.run(go()) is None
    assert "no_such_subteam" in caplog.text and "Traceback" not in caplog.text


def test_who_approved_or_dismissed_a_digest_candidate_is_a_mention(tmp_path, data_dir, slack):
    from tests.test_digest import history

    _, remote, _ = published(tmp_path, history)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nmaintainers = ["UADA"]\n\n[serve]\nport = 0\n\n[chat]\nadapters = ["slack"]\n'
                   f'[chat.slack]\nmode = "http"\n\n[digest]\nchannel = "CDEV"\nbatch = true\n\n'
                   f'[[repos]]\nname = "demo"\nurl = "{remote.as_uri()}"\n'
                   f'branches = [{{ name = "1.0" }}, {{ name = "1.1" }}]\n')

    def react(key: str, emoji: str, event_id: str):
        def build(answers):
            candidate = next(args for args in slack.of("chat.postMessage") if args["text"].startswith(f"{key} "))
            return event({"type": "reaction_added", "user": "UADA", "reaction": emoji,
                          "item": {"type": "message", "channel": "CDEV", "ts": candidate["__ts"]},
                          "event_ts": "1.0"}, event_id)
        return build

    converse(cfg, data_dir, [slash("digest"), react("#1", "white_check_mark", "Ev1"), react("#6", "x", "Ev2")])
    said = texts(slack, "chat.postMessage")
    assert "#1 joins the next batch for 1.0, 1.1 (approved by <@UADA>)." in said
    assert "#6 dismissed by <@UADA>; it will not be proposed again." in said


def test_a_github_login_mirrored_to_slack_is_a_name_even_when_shaped_like_a_slack_id(slack):
    """GitHub activity mirrored to `[chat.slack] channel` names GitHub logins: a login such as
    U0BOSS must not become a mention of the Slack user with that id."""
    from adapters.chat.router import ChatRouter
    from adapters.chat.slack import SlackChat, client
    from bot.core.people import mention
    from bot.core.ports import MessageRef

    class PullRequestThread:
        def __init__(self) -> None:
            self.said: list[str] = []

        async def post(self, channel: str, text: str, thread: str | None = None,
                       buttons: tuple[str, ...] = ()) -> MessageRef:
            self.said.append(text)
            return MessageRef(channel, str(len(self.said)), thread)

        async def update(self, message: MessageRef, text: str) -> None:
            self.said.append(text)

        async def notify(self, channel: str, user: str, text: str, thread: str | None = None,
                         reply: str | None = None) -> None:
            self.said.append(text)

    async def go() -> None:
        router = ChatRouter(SlackChat(client("xoxb-test-token", slack.url), min_edit_interval=0),
                            {"github:": PullRequestThread()}, mirror="CTEAM")
        ref = await router.post("github:acme/server#12", f"Backport of #12 to rel, requested by {mention('U0BOSS')}.")
        await router.update(ref, f"rel: approved by {mention('U0BOSS')}")

    asyncio.run(go())
    assert texts(slack, "chat.postMessage") == ["[github:acme/server#12] Backport of #12 to rel, requested by U0BOSS."]
    assert texts(slack, "chat.update") == ["[github:acme/server#12] rel: approved by U0BOSS"]
