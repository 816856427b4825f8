"""Start servers in their own process groups, wait for them, measure them, and stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
OUT = ROOT / "bench" / "out"
HOST = "127.0.0.1"

# Every server started and not yet stopped: stopped on any exit, errors included.
_RUNNING: list[Server] = []


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tool(name: str) -> str:
    """The path of a console script in the project's virtualenv."""
    return str(VENV_BIN / name)


class Server:
    """One server process tree, started in a new session so it can be killed as a group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        env: Mapping[str, str] | None = None,
        ready_path: str = "/",
    ):
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.ready_path = ready_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = OUT / f"{name}.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, within: float = 30.0) -> Server:
        """Start the process and wait until it answers HTTP on its ready path."""
        OUT.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _RUNNING.append(self)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers; the status does not matter here
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer within {within:.0f} s; see {self.log}")

    def stop(self) -> None:
        """Terminate the whole process group; kill it if it lingers."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        # Children can outlive a master that exited first: sweep the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self.proc = None
        if self in _RUNNING:
            _RUNNING.remove(self)

    def workers(self) -> list[int]:
        """Process ids of the worker processes (the children of the master, or the master)."""
        assert self.proc is not None
        # multiprocessing's resource tracker is a helper process, not a worker.
        children = [p for p in _children(self.proc.pid) if not _is_helper(p)]
        return children or [self.proc.pid]

    def rss_mb(self) -> float:
        """Resident memory of the workers, summed, in MB (from /proc/PID/status VmRSS)."""
        return sum(rss_mb(pid) for pid in self.workers())

    def tree(self) -> list[int]:
        """The process and all its descendants (master, workers, helpers)."""
        assert self.proc is not None
        return tree(self.proc.pid)

    def tree_rss_mb(self) -> float:
        """Resident memory of every process the server runs, summed, in MB."""
        return sum(rss_mb(pid) for pid in self.tree())

    def tree_pss_mb(self) -> float:
        """Proportional memory of every process the server runs, summed, in MB.

        Forked workers share their parent's pages until they write them: RSS
        counts a shared page in every process, PSS splits it between them, so
        the sum is what the server really holds.
        """
        return sum(pss_mb(pid) for pid in self.tree())

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _is_helper(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


def tree(pid: int) -> list[int]:
    """``pid`` and every descendant still running."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += _children(current)
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time (user + system) of these processes and of their children already reaped.

    A pool's connection or a worker that ended was waited for by its parent,
    whose cutime/cstime then holds its time: summing both over a live tree
    counts every process once.
    """
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def settle(pids: Sequence[int], below: float = 0.1, within: float = 15.0) -> None:
    """Wait until these processes use less than ``below`` of a core (work left over drained)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = cpu_seconds(pids)
        time.sleep(0.5)
        if cpu_seconds(pids) - before < below * 0.5:
            return


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (every core, every process), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """VmRSS of one process in MB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size of one process in MB (/proc/PID/smaps_rollup); 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def stop_all() -> None:
    """Stop every server still running (on errors and interrupts)."""
    for server in list(reversed(_RUNNING)):
        server.stop()


@contextlib.contextmanager
def servers(*items: Server) -> Iterator[list[Server]]:
    """Start servers in order and stop them all when the block ends, however it ends."""
    try:
        yield [item.start() for item in items]
    finally:
        # stop() is a no-op for a server that never started.
        for item in reversed(items):
            item.stop()


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, timeout: float = 60) -> str:
    """Run a short command in the project and return its output; raise if it fails."""
    result = subprocess.run(
        list(argv),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}")
    return result.stdout
