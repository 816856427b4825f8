"""Run wrk against a loopback URL and read its report."""

from __future__ import annotations

import re
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_DURATION = re.compile(r"([\d.]+)(us|ms|s|m)$")


@dataclass
class WrkResult:
    """What one wrk run reports: throughput, latency percentiles (ms) and errors."""

    rps: float
    requests: int
    percentiles: dict[str, float] = field(default_factory=dict)
    socket_errors: int = 0
    timeouts: int = 0
    non_2xx_3xx: int = 0
    extra: dict[str, str] = field(default_factory=dict)
    # wrk's own CPU time and the run's wall time, for saying where the CPU went.
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def p50(self) -> float:
        return self.percentiles.get("50", float("nan"))

    @property
    def p99(self) -> float:
        return self.percentiles.get("99", float("nan"))


def _ms(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    """Read req/s, the latency distribution, errors and the script's `bench:` lines."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise ValueError(f"unexpected wrk output:\n{output}")
    result = WrkResult(rps=float(rps.group(1)), requests=int(total.group(1)))
    for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.M):
        result.percentiles[pct] = _ms(value)
    errors = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors:
        connect, read, write, timeout = (int(x) for x in errors.groups())
        result.socket_errors = connect + read + write
        result.timeouts = timeout
    non_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_ok:
        result.non_2xx_3xx = int(non_ok.group(1))
    for key, value in re.findall(r"^bench: (\w+)=(\S+)", output, re.M):
        result.extra[key] = value
    return result


def wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    threads: int = 2,
    script: str | None = None,
    args: list[str] | None = None,
    timeout: float = 10.0,
) -> WrkResult:
    """Run wrk for ``duration`` seconds (plus a margin for its own start and stop)."""
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError("benchmarks only target the loopback address")
    # wrk takes whole seconds only.
    duration = max(1, round(duration))
    argv = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{duration:g}s",
        f"--timeout={timeout:g}s",
        "--latency",
    ]
    if script:
        argv += ["-s", str(LUA / script)]
    argv.append(url)
    if args:
        argv += ["--", *args]
    before, started = _children_cpu(), time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + timeout + 30, check=False
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    result = parse(done.stdout)
    # The servers are our children too, but are reaped only when stopped: the
    # children's CPU that grew during this call is wrk's.
    result.cpu_seconds, result.wall_seconds = _children_cpu() - before, wall
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
