"""The one grammar: every form of the command and specific errors for bad input."""

from __future__ import annotations

import pytest

from bot.core.grammar import Backport, Cancel, Digest, Help, ParseError, Retry, Stats, Status, Why, parse


@pytest.mark.parametrize("text,expected", [
    ("/backport 1234 to 8.1", Backport("#1234", ("8.1",))),
    ("/backport #1234 to 8.0 8.1", Backport("#1234", ("8.0", "8.1"))),
    ("/backport 1234 to 8.0,8.1", Backport("#1234", ("8.0", "8.1"))),
    ("backport 1234 to 8.0, 8.1 and 9.0", Backport("#1234", ("8.0", "8.1", "9.0"))),
    ("/backport 1234 to all", Backport("#1234", ("all",))),
    ("/backport 3f2a9c1 to 8.1", Backport("3f2a9c1", ("8.1",))),
    ("/backport https://github.com/o/r/pull/1234 to 8.1", Backport("#1234", ("8.1",))),
    ("@backportbot 1234 to 8.1", Backport("#1234", ("8.1",))),
    ("<@U123ABC> backport 1234 to 8.1", Backport("#1234", ("8.1",))),
    ("1234 to 8.1", Backport("#1234", ("8.1",))),
    ("/backport status 1234", Status("#1234")),
    ("/backport why 1234 8.1", Why("#1234", "8.1")),
    ("@bot why did 1234 fail on 8.1?", Why("#1234", "8.1")),
    ("why did the backport of #1234 fail on 8.1", Why("#1234", "8.1")),
    ("/backport retry 1234 8.1", Retry("#1234", "8.1")),
    ("/backport cancel 1234 8.1", Cancel("#1234", "8.1")),
    ("/backport digest", Digest()),
    ("/backport stats", Stats()),
    ("/backport help", Help()),
    ("/backport", Help()),
])
def test_grammar(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text,message", [
    ("/backport 1234 8.1", "Did you mean `/backport 1234 to 8.1`?"),
    ("/backport 1234 to", "Try: /backport 1234 to 8.1"),
    ("/backport foo to 8.1", "'foo' is not a pull request"),
    ("/backport why 1234", "usage: /backport why <PR or commit> <branch>"),
    ("/backport status", "usage: /backport status"),
    ("/backport stats now", "takes no arguments"),
])
def test_bad_input_gets_a_specific_answer(text, message):
    with pytest.raises(ParseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)


@pytest.mark.parametrize("text,meant", [
    ("/backport 1182 8.0", "/backport 1182 to 8.0"),
    ("/backport #1182 8.0 8.1", "/backport 1182 to 8.0 8.1"),
    ("/backprot 1182 to 8.0", "/backport 1182 to 8.0"),
    ("/bakport 1182 8.0", "/backport 1182 to 8.0"),
    ("can you backport 1182 to 8.0?", "/backport 1182 to 8.0"),
    ("please backport 1182 to 8.0, 8.1", "/backport 1182 to 8.0 8.1"),
])
def test_a_near_miss_gets_the_command_it_probably_meant(text, meant):
    with pytest.raises(ParseError) as raised:
        parse(text)
    assert raised.value.suggestion == meant
    assert str(raised.value) == f"Did you mean `{meant}`?"


@pytest.mark.parametrize("text", ["/deploy 1182 to 8.0", "what did the bot change in the 8.0 backport of 1200?",
                                  "/backport foo to 8.1"])
def test_no_suggestion_without_a_likely_command(text):
    with pytest.raises(ParseError) as raised:
        parse(text)
    assert raised.value.suggestion is None


def test_echoed_input_is_cut_short():
    with pytest.raises(ParseError) as found:
        parse("/backport " + "x" * 100_000 + " to 8.1")
    assert len(str(found.value)) < 200


def test_a_code_fence_outlasts_any_backticks_it_holds():
    from bot.core.reports import fence

    answer = "x = 1\n```\n## injected heading\n````"
    assert fence(answer) == "`````" and fence("plain") == "```"
