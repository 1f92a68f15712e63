"""Benchmark: how fast `/backport` slash commands are acknowledged (Slack wants it within 3 s).

50 signed slash commands sent at once over loopback to the real Bolt app in HTTP mode (its Web
API pointed at a local stub), timing each until its HTTP answer (the ack). Goal: p99 <= 100 ms.

    python bench/slack_ack.py [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from bot import config  # noqa: E402
from bot.app import build_app, start_servers  # noqa: E402
from tests.fake_slack import FakeSlack  # noqa: E402

SECRET = "bench-secret"


def make_repo(root: Path) -> Path:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    work = root / "work"
    for args in (["init", "-q", "-b", "main", str(work)], ["-C", str(work), "commit", "-q", "--allow-empty", "-m", "i"],
                 ["-C", str(work), "branch", "rel"], ["clone", "-q", "--bare", str(work), str(root / "r.git")]):
        subprocess.run(["git", *args], check=True, env=env)
    return root / "r.git"


async def run(n: int) -> list[float]:
    fake = FakeSlack()
    with tempfile.TemporaryDirectory() as tmp:
        remote = make_repo(Path(tmp))
        cfg_file = Path(tmp) / "bot.toml"
        cfg_file.write_text(f'[bot]\nmaintainers = ["U1"]\n[serve]\nport = 0\n[chat]\nadapters = ["slack"]\n'
                            f'[chat.slack]\nmode = "http"\n[[repos]]\nname = "r"\nurl = "{remote.as_uri()}"\n'
                            f'branches = [{{ name = "rel" }}]\n')
        os.environ.update(SLACK_API_URL=fake.url, SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET)
        cfg = config.load(cfg_file)
        console = build_app(cfg, Path(tmp) / "data", io.StringIO())
        await console.start()
        out = io.StringIO()
        stops = await start_servers(console, cfg, out)
        port = re.search(r"Listening on http://[^:]+:(\d+) ", out.getvalue()).group(1)  # type: ignore[union-attr]
        verifier = SignatureVerifier(SECRET)

        async def one(http: aiohttp.ClientSession, i: int) -> float:
            body = urlencode({"command": "/backport", "text": "help", "user_id": "U1", "channel_id": "C1",
                              "team_id": "T1", "trigger_id": f"{i}", "response_url": "http://127.0.0.1:9/x"})
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body)}
            start = time.perf_counter()
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as r:
                await r.read()
                assert r.status == 200
            return time.perf_counter() - start

        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n)) as http:
                await one(http, -1)  # warm-up: Bolt's auth.test on the first request
                times = await asyncio.gather(*(one(http, i) for i in range(n)))
            await console.idle()
        finally:
            for stop in stops:
                await stop()
            await console.stop()
            fake.close()
        return list(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=50)
    args = ap.parse_args()
    times = sorted(asyncio.run(run(args.requests)))
    p50 = statistics.median(times) * 1000
    p99 = times[min(len(times) - 1, int(round(0.99 * len(times))) - 1)] * 1000
    print(f"{len(times)} concurrent signed /backport commands: ack p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"max {times[-1] * 1000:.1f} ms (goal p99 <= 100 ms)")


if __name__ == "__main__":
    main()
