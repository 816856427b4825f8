"""A real HAProxy in front of several shop processes (tests/reliability/chaos.py), for tests.

The proxy is Debian's ``haproxy`` (``.ci/run`` installs it), started in the
foreground with a configuration written to a temporary folder and stopped
afterwards; its health check asks each instance's ``GET /healthz``.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from storefront.serving import free_port, wait_until_listening


def haproxy_path() -> str:
    """Debian's haproxy; its absence fails the test (CI installs it)."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        pytest.fail("HAProxy is required: apt-get install -y haproxy", pytrace=False)
    return found


def haproxy_config(port: int, backends: list[int]) -> str:
    """Round robin over the instances; a failed connection goes to another one."""
    servers = "\n".join(
        f"    server shop{i} 127.0.0.1:{p} check" for i, p in enumerate(backends, 1)
    )
    return f"""
global
    maxconn 4096

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    # A connection refused or cut without an answer (an instance gone) is retried on
    # another instance: checkouts carry their attempt and webhooks their event id, so a
    # request resent after a half-done first try changes nothing twice.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend shop
    bind 127.0.0.1:{port}
    option forwardfor
    default_backend shops

backend shops
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    # Three missed checks mark an instance down (one slow answer under load is not
    # death); requests that meet a dead one meanwhile are redispatched above.
    timeout check 2s
    default-server inter 300ms fall 3 rise 1
{servers}
"""


class Proxy:
    """HAProxy in the foreground on a loopback port, for as long as the context lasts."""

    def __init__(self, backends: list[int], folder: Path, port: int | None = None):
        self.port = port or free_port()
        self.config = folder / "haproxy.cfg"
        self.config.write_text(haproxy_config(self.port, backends), encoding="utf-8")
        self.log = folder / "haproxy.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                haproxy_path(), "-db", "-f", str(self.config), stdout=out, stderr=out
            )
        await wait_until_listening("127.0.0.1", self.port, within=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
