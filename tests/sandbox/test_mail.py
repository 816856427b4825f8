"""The local mail catcher: a real SMTP client sends, the pages and JSON show what arrived."""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import socket
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from aiosmtpd.smtp import Envelope

from storefront.sandbox import SandboxSettings
from storefront.sandbox.mail import MAIL_KEPT, MailCatcher
from storefront.serving import free_port

from .support import Sandbox

HOSTILE_HTML = '<p>Hello <script>alert("x")</script><img src=x onerror=alert(1)></p>'


@pytest.fixture
async def mailed(make_sandbox: Callable[..., Any]) -> AsyncIterator[Sandbox]:
    """A sandbox whose mail catcher listens on a free port."""
    async with make_sandbox(smtp_port=free_port()) as sandbox:
        yield sandbox


def order_mail(to: str, subject: str) -> EmailMessage:
    """A message with a plain-text part and an HTML alternative."""
    message = EmailMessage()
    message["From"] = "shop@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("Thank you for your order 42.\nTotal: 39.98 EUR\n")
    message.add_alternative(HOSTILE_HTML, subtype="html")
    return message


def send(port: int, message: EmailMessage, login: bool = False) -> None:
    """Send with the standard library's SMTP client (blocking: run it in a thread)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        if login:
            client.login("shop", "any-password")
        client.send_message(message)


async def test_a_message_sent_over_smtp_is_caught(
    mailed: Sandbox, http: aiohttp.ClientSession
) -> None:
    port = mailed.settings.smtp_port
    await asyncio.to_thread(send, port, order_mail("ada@example.com", "Your order 42"))
    # A shop configured with SMTP credentials logs in first; any will do.
    await asyncio.to_thread(send, port, order_mail("bob@example.com", "Your order 43"), True)
    async with http.get(f"{mailed.url}/_sandbox/mail.json") as response:
        assert response.status == 200
        box = await response.json()
    assert (box["port"], box["listening"]) == (port, True)
    newest, oldest = box["data"]
    assert (newest["subject"], newest["to"]) == ("Your order 43", ["bob@example.com"])
    assert (oldest["from"], oldest["subject"]) == ("shop@example.com", "Your order 42")
    assert "Total: 39.98 EUR" in oldest["text"]
    assert oldest["html"].strip() == HOSTILE_HTML

    async with http.get(f"{mailed.url}/_sandbox/mail") as response:
        page = await response.text()
        assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "Your order 42" in page and "bob@example.com" in page
    async with http.get(f"{mailed.url}/_sandbox/mail/{oldest['id']}") as response:
        assert response.status == 200
        message_page = await response.text()
    assert "Total: 39.98 EUR" in message_page
    # The HTML part is shown as escaped source, never as markup.
    assert "<script>" not in message_page and "&lt;script&gt;" in message_page
    assert "<img src=x" not in message_page


async def test_an_unknown_message_is_a_404(mailed: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{mailed.url}/_sandbox/mail/999") as response:
        assert response.status == 404


async def test_the_catcher_is_off_at_port_zero(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{sandbox.url}/_sandbox/mail.json") as response:
        box = await response.json()
    assert (box["port"], box["listening"], box["data"]) == (0, False, [])


async def test_a_port_in_use_leaves_the_sandbox_running_without_mail(
    make_sandbox: Callable[..., Any], http: aiohttp.ClientSession
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with make_sandbox(smtp_port=port) as sandbox:
            async with http.get(f"{sandbox.url}/_sandbox/mail.json") as response:
                assert (await response.json())["listening"] is False
            async with http.get(f"{sandbox.url}/_sandbox/mail") as response:
                assert "was in use" in await response.text()


class FixedClock:
    """A clock that always says the same time."""

    def now(self) -> float:
        return 1_800_000_000.0


async def test_only_the_last_messages_are_kept() -> None:
    catcher = MailCatcher(0, FixedClock())
    for number in range(MAIL_KEPT + 3):
        envelope = Envelope()
        envelope.mail_from = "shop@example.com"
        envelope.rcpt_tos = ["ada@example.com"]
        envelope.content = f"Subject: mail {number}\r\n\r\nbody {number}\r\n".encode()
        reply = await catcher.handle_DATA(None, None, envelope)  # type: ignore[arg-type]
        assert reply.startswith("250")
    assert len(catcher.messages) == MAIL_KEPT
    assert catcher.messages[0].subject == f"mail {MAIL_KEPT + 2}"
    assert catcher.messages[-1].subject == "mail 3"
    assert catcher.get(1) is None and catcher.get(MAIL_KEPT + 3) is not None
    assert catcher.messages[0].text == f"body {MAIL_KEPT + 2}\n"


def test_smtp_port_comes_from_env_and_is_checked() -> None:
    assert SandboxSettings().smtp_port == 1025
    assert SandboxSettings.from_env({"SANDBOX_SMTP_PORT": "2525"}).smtp_port == 2525
    assert SandboxSettings.from_env({"SANDBOX_SMTP_PORT": "0"}).smtp_port == 0
    with pytest.raises(ValueError, match="smtp_port"):
        SandboxSettings(smtp_port=70000)
    with pytest.raises(ValueError, match="smtp_port"):
        SandboxSettings.from_env({"SANDBOX_SMTP_PORT": "many"})


def test_smtp_port_has_a_flag() -> None:
    parser = argparse.ArgumentParser()
    SandboxSettings.add_arguments(parser)
    namespace = parser.parse_args(["--smtp-port", "2526"])
    assert SandboxSettings.from_args(namespace, SandboxSettings()).smtp_port == 2526
