"""Who is working on an attempt, and whether they still are. Each process start takes a lease: a
random id, its host, its pid and when that process started, and a heartbeat it renews in the
store. An attempt names the lease of the process working on it. A lease is dead when it ended,
when its heartbeat is older than `ttl`, or, on the same host, when its process is gone or is
another process with the same pid (a container's PID 1 after a restart). On another host only
the heartbeat can tell, so its attempts are recovered after `ttl`.

The verify commands of an attempt run in their own process group; the group is recorded with the
attempt (pid and start time, so that a reused pid is never killed) and killed on recovery."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

HEARTBEAT = 10.0  # seconds between two renewals
TTL = 60.0  # a lease not renewed for this long is dead


@dataclass(frozen=True)
class Lease:
    id: str
    host: str
    pid: int
    started: str  # the process's start time as the kernel counts it; "" where unknown
    heartbeat_at: float
    ended_at: float | None = None


class LeaseStore(Protocol):
    def take_lease(self, lease: Lease) -> None: ...

    def renew_lease(self, lease_id: str, at: float) -> None: ...

    def end_lease(self, lease_id: str, at: float) -> None: ...

    def lease(self, lease_id: str) -> Lease | None: ...


def process_started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return ""
    # The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    return stat[stat.rindex(")") + 2:].split()[19]


def new_lease(now: float | None = None) -> Lease:
    pid = os.getpid()
    host = socket.gethostname()
    return Lease(f"{host}:{pid}:{uuid.uuid4().hex[:12]}", host, pid, process_started(pid) or "",
                 time.time() if now is None else now)


def alive(lease: Lease | None, now: float, ttl: float = TTL) -> bool:
    if lease is None or lease.ended_at is not None or now - lease.heartbeat_at > ttl:
        return False
    if lease.host == socket.gethostname():
        started = process_started(lease.pid)
        return started is not None and (not started or not lease.started or started == lease.started)
    return True  # another machine's process: its heartbeat decides


def process_group(pid: int) -> str:
    """How an attempt records the process group a verify command leads."""
    return f"{pid}:{process_started(pid) or ''}"


def kill_group(recorded: str | None) -> bool:
    """Kill a recorded process group if its leader is still the process that was recorded."""
    if not recorded:
        return False
    pid_text, _, started = recorded.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now_started = process_started(pid)
    if now_started is None or (started and now_started and now_started != started):
        return False  # gone, or the pid belongs to someone else now
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Keeper:
    """Takes a lease for this process and renews it from a daemon thread until `end`."""

    def __init__(self, store: LeaseStore, interval: float = HEARTBEAT) -> None:
        self.store, self.interval = store, interval
        self.lease = new_lease()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def id(self) -> str:
        return self.lease.id

    def start(self) -> Keeper:
        self.store.take_lease(self.lease)
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.renew_lease(self.lease.id, time.time())
            except Exception:  # a busy database: the next beat tries again; TTL allows several misses
                pass

    def end(self) -> None:
        if self._thread is None:
            return  # never taken
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        self.store.end_lease(self.lease.id, time.time())
