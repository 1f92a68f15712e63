"""Build and test commands in a container runtime (`[bot] isolation = "container"`), for real, with
podman: the same secret-stealing test script as tests/test_sandbox.py, run by a real
`backportbot backport` process holding six secrets, finds none of them, neither the data directory
nor the network; killing the recorded process group (what abandoning an attempt does) or the bot
itself ends the container. The image is made here from the host's own bash, coreutils and git
(nothing is pulled) and kept in a podman store of its own under the temporary directory.

Where podman is missing or cannot run a container, these tests skip and say why (the adapter's
own probe says it); check-config reports the same reason."""

from __future__ import annotations

import contextlib
import io
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sandbox import container
from adapters.sandbox.container import Container
from adapters.sandbox.process import ProcessSandbox
from bot.core.lease import kill_group, process_group
from bot.engine.errors import VerifyFailed
from bot.engine.ports import Command
from tests import scenarios
from tests.gitrepo import GitRepo
from tests.test_sandbox import SECRETS, SNOOP, leaked

ROOT = Path(__file__).parent.parent
IMAGE = "localhost/backportbot-test:1"
TOOLS = ("bash", "sh", "cat", "ls", "id", "echo", "env", "sleep", "true", "git")
STORE = Path(os.environ.get("TMPDIR", "/tmp")) / f"backportbot-container-test-{os.geteuid()}"


def podman_conf() -> dict[str, str]:
    """A podman of the test's own: its image store under STORE (vfs: works on any file system), and
    where crun cannot run containers (cgroup v1 and v2 mixed) runc; the default rlimits are the
    test's own (podman's 1048576 open files need CAP_SYS_RESOURCE, which some hosts do not give root)."""
    STORE.mkdir(parents=True, exist_ok=True)
    storage = STORE / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "vfs"\ngraphroot = "{STORE / "graph"}"\nrunroot = "{STORE / "run"}"\n')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    engine = '[engine]\nruntime = "runc"\n' if shutil.which("runc") else ""
    conf = STORE / "containers.conf"
    conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={soft}:{hard}", "nproc=4096:4096"]\n{engine}')
    return {"CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}


def rootfs_tar() -> bytes:
    """The host's TOOLS and the libraries they load, as a tar of a root file system."""
    files: set[str] = set()
    for tool in TOOLS:
        path = shutil.which(tool)
        if path is None:
            continue
        files.add(os.path.realpath(path))
        files.add(path)
        libs = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
        files.update(re.findall(r"(/\S+) \(0x", libs))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for d in ("tmp", "etc", "proc", "sys", "dev"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        for f in sorted(files):
            tar.add(os.path.realpath(f), arcname=f.lstrip("/"))  # symlinks (/bin -> usr/bin) as files
        passwd = b"root:x:0:0::/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return out.getvalue()


@pytest.fixture(scope="module")
def podman() -> Iterator[dict[str, str]]:
    """The environment that points podman at the test's store, with IMAGE in it; skips, saying why,
    where podman cannot run a container."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (apt install podman runc; .ci/run installs them when it can)")
    env = podman_conf()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        exists = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, check=False)
        if exists.returncode != 0:
            made = subprocess.run(["podman", "import", "-", IMAGE], input=rootfs_tar(), capture_output=True,
                                  check=False, timeout=120)
            if made.returncode != 0:
                pytest.skip(f"podman cannot import an image here: {made.stderr.decode(errors='replace')[-300:]}")
        container.unusable.cache_clear()
        problem = container.unusable("podman", IMAGE)
        if problem is not None:
            pytest.skip(f"podman cannot run containers here: {problem}")
        yield env
    finally:
        container.unusable.cache_clear()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def containers(label: str = "backportbot=verify") -> list[str]:
    done = subprocess.run(["podman", "ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}"],
                          capture_output=True, text=True, check=True)
    return done.stdout.split()


def gone(label: str = "backportbot=verify", within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while containers(label):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def host_address() -> str | None:
    """An address of this machine that is not loopback (a container's loopback is its own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") else address


@contextlib.contextmanager
def listener() -> Iterator[tuple[str, int] | None]:
    address = host_address()
    if address is None:
        yield None
        return
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen(8)
        yield address, server.getsockname()[1]


def configure(tmp_path: Path, repo: GitRepo, run: str, network: bool = False, image: str = IMAGE,
              runtime: str = "podman") -> Path:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nisolation = "container"\ncontainer_runtime = "{runtime}"\ncontainer_image = "{image}"\n'
                   f'verify_network = {"true" if network else "false"}\n\n'
                   f'[[repos]]\nname = "demo"\npath = "{repo.path}"\nmain_branch = "main"\n'
                   f'branches = [{{ name = "rel" }}]\n[[repos.commands]]\nname = "snoop"\nrun = "{run}"\n')
    return cfg


def backport(cfg: Path, data: Path, ref: str) -> subprocess.Popen[str]:
    env = {**os.environ, **SECRETS, "BACKPORTBOT_HOME": str(data)}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(cfg), "backport", ref, "--to", "rel"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


NET = "(exec 3<>/dev/tcp/{host}/{port} && echo NET-REACHED) 2>&1 || echo NET-REFUSED; "


def snoop(repo: GitRepo, tmp_path: Path, network: bool, target: tuple[str, int] | None) -> str:
    ref = scenarios.clean(repo)
    data = tmp_path / "data"
    outside = tmp_path / "outside.txt"
    net = NET.format(host=target[0], port=target[1]) if target else ""
    cfg = configure(tmp_path, repo, net + SNOOP.format(data=data, outside=outside), network)
    bot = backport(cfg, data, ref)
    out, _ = bot.communicate(timeout=180)
    assert bot.returncode == 0, out
    (log,) = (data / "logs").rglob("1-snoop.log")
    found = log.read_text(errors="replace")
    escaped = [str(p) for p in (data / "escaped", outside) if p.exists()]
    return found + "".join(f"\nESCAPED {p}" for p in escaped)


def test_in_a_container_a_test_script_finds_no_secret_nor_the_data_directory_nor_the_network(podman, repo, tmp_path):
    with listener() as target:
        found = snoop(repo, tmp_path, False, target)
    assert leaked(found) == [], found
    assert "ESCAPED" not in found  # neither the data directory nor the rest of the file system took a write
    assert "SQLite format 3" not in found and "backportbot.db " not in found, found  # an empty data directory
    assert not re.search(rf"/proc/{os.getpid()}/environ", found)
    if os.geteuid() == 0:
        assert "uid=65534" in found  # root's bot runs the fix's code as nobody
    if target is None:
        pytest.skip("this machine has no address but loopback: the network part was not checked")
    assert "NET-REFUSED" in found and "NET-REACHED" not in found, found
    assert containers() == []  # --rm, and the sandbox removed what was left


def test_a_build_that_asks_git_works_in_a_container(podman, repo, tmp_path):
    """As in bubblewrap: run as nobody, git trusts the work tree it was lent."""
    ref = scenarios.clean(repo)
    data = tmp_path / "data"
    bot = backport(configure(tmp_path, repo, "git log -1 --format=picked:%s && git diff --name-only HEAD~1"), data,
                   ref)
    out, _ = bot.communicate(timeout=180)
    assert bot.returncode == 0, out
    (log,) = (data / "logs").rglob("1-snoop.log")
    assert "picked:Fix overflow in handle (#12)" in log.read_text() and "src/server.c" in log.read_text(), \
        log.read_text()


def test_with_verify_network_the_container_reaches_the_network(podman, repo, tmp_path):
    """The control for the network part above: the same connection, allowed, gets through."""
    with listener() as target:
        if target is None:
            pytest.skip("this machine has no address but loopback")
        found = snoop(repo, tmp_path, True, target)
    if "NET-REACHED" not in found:
        pytest.skip(f"podman's default network does not reach this machine here: {found[:300]}")
    assert leaked(found) == []


def worktree(repo: GitRepo, tmp_path: Path) -> Path:
    scenarios.clean(repo)
    path = tmp_path / "data" / "worktrees" / "attempt-1"
    path.parent.mkdir(parents=True)
    subprocess.run(["git", "-C", str(repo.path), "worktree", "add", "--detach", str(path), "rel"],
                   check=True, capture_output=True)
    return path


def test_killing_the_recorded_process_group_ends_the_container(podman, repo, tmp_path):
    """What Workflow.abandon does (kill_group of the recorded group) ends the container too: the
    runtime's client alone would leave it running."""
    tree = worktree(repo, tmp_path)
    sandbox = ProcessSandbox({**os.environ, **podman}, Container("podman", IMAGE))
    recorded: list[str] = []
    outcome: list[BaseException | None] = []

    def started(pid: int | None) -> None:
        if pid is not None:
            recorded.append(process_group(pid))

    def run() -> None:
        try:
            sandbox.run(tree, [Command("hang", "sleep 300", 600)], tmp_path / "logs", started)
            outcome.append(None)
        except BaseException as e:  # noqa: B036 (handed to the test thread)
            outcome.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    label = f"backportbot.worktree={tree.resolve()}"
    deadline = time.monotonic() + 60
    while not containers(label):
        assert time.monotonic() < deadline and worker.is_alive(), outcome
        time.sleep(0.2)
    assert kill_group(recorded[0])
    assert gone(label), containers(label)
    worker.join(30)
    assert isinstance(outcome[0], VerifyFailed)
    assert (tree / ".git").exists() and tree.stat().st_uid == os.geteuid()  # taken back


def test_a_killed_bot_leaves_no_container_running(podman, repo, tmp_path):
    """SIGKILL to the bot while its command runs: the container goes with it (as bubblewrap's
    --die-with-parent), without waiting for a restart to abandon the attempt."""
    ref = scenarios.clean(repo)
    cfg = configure(tmp_path, repo, "sleep 300")
    bot = backport(cfg, tmp_path / "data", ref)
    try:
        deadline = time.monotonic() + 90
        while not containers():
            assert time.monotonic() < deadline and bot.poll() is None, bot.stdout.read() if bot.stdout else ""
            time.sleep(0.2)
    finally:
        bot.send_signal(signal.SIGKILL)
        bot.communicate()
    assert gone(), containers()

    def clients() -> str:
        return subprocess.run(["pgrep", "-f", f"podman run .*{IMAGE}"], capture_output=True, text=True,
                              check=False).stdout.strip()

    deadline = time.monotonic() + 15  # the client notices its container is gone a moment later (slower under load)
    while clients() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert clients() == ""  # and its client ended with it


def test_check_config_says_when_the_container_isolation_works_and_why_not(podman, repo, tmp_path):
    scenarios.clean(repo)
    ok = configure(tmp_path, repo, "true")
    said = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(ok)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert said.returncode == 0, said.stdout + said.stderr
    assert f"isolation: container (podman, image {IMAGE}): " in said.stdout, said.stdout
    missing = configure(tmp_path, repo, "true", image="localhost/backportbot-no-such-image:1")
    said = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(missing)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert ("NOT WORKING: the image localhost/backportbot-no-such-image:1 is not in podman's local images "
            "(podman pull localhost/backportbot-no-such-image:1: the bot never pulls") in said.stdout, said.stdout


def test_check_config_says_docker_cannot_reach_its_daemon(repo, tmp_path):
    """Real where it applies: a docker client without a daemon (this project's CI machine)."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client here")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0:
        pytest.skip("docker's daemon answers here")
    scenarios.clean(repo)
    cfg = configure(tmp_path, repo, "true", image="docker.io/library/gcc:13", runtime="docker")
    said = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(cfg)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert "isolation: container (docker, image docker.io/library/gcc:13), NOT WORKING: docker cannot reach its " \
           "engine (" in said.stdout, said.stdout


def test_the_container_isolation_needs_an_image(repo, tmp_path):
    scenarios.clean(repo)
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nisolation = "container"\n\n[[repos]]\nname = "demo"\npath = "{repo.path}"\n'
                   f'branches = [{{ name = "rel" }}]\n')
    said = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(cfg)], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert said.returncode != 0
    assert "isolation = \"container\" needs container_image" in said.stdout + said.stderr
