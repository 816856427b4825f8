"""A local mail catcher: an SMTP listener keeping the last messages for people and tests.

The shop's emails then work offline in sandbox mode: point its SMTP settings at
``127.0.0.1:<smtp_port>``. Nothing is relayed anywhere; messages live in memory only.
"""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from quart import Blueprint, abort, current_app, render_template

logger = logging.getLogger(__name__)

MAIL_KEPT = 500

mail_pages = Blueprint("sandbox_mail", __name__, url_prefix="/_sandbox")


@dataclass(frozen=True)
class CaughtMail:
    """One received message, parsed once."""

    id: int
    received: float
    mail_from: str
    rcpt_tos: tuple[str, ...]
    subject: str
    text: str | None
    html: str | None
    size: int

    def summary(self) -> dict[str, Any]:
        """The message as JSON for tests (both bodies included)."""
        return {
            "id": self.id,
            "received": self.received,
            "from": self.mail_from,
            "to": list(self.rcpt_tos),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "size": self.size,
        }


def _part(message: EmailMessage, subtype: str) -> str | None:
    """The body of the ``text/<subtype>`` part, if the message has one."""
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    content = part.get_content()
    # Line ends as Python writes them: SMTP's CRLF is the wire's business.
    return content.replace("\r\n", "\n") if isinstance(content, str) else None


def parse_mail(mail_id: int, received: float, envelope: Envelope) -> CaughtMail:
    """Parse what the SMTP client sent into a ``CaughtMail``."""
    raw = envelope.original_content or envelope.content or b""
    data = raw if isinstance(raw, bytes) else raw.encode()
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)  # the default policy builds EmailMessage
    return CaughtMail(
        id=mail_id,
        received=received,
        mail_from=envelope.mail_from or "",
        rcpt_tos=tuple(envelope.rcpt_tos),
        subject=str(message.get("Subject", "")),
        text=_part(message, "plain"),
        html=_part(message, "html"),
        size=len(data),
    )


class MailCatcher:
    """Listens for SMTP on 127.0.0.1 and keeps the last ``MAIL_KEPT`` messages, newest first."""

    def __init__(self, port: int, clock: Any) -> None:
        self.port = port
        self.clock = clock
        self.messages: collections.deque[CaughtMail] = collections.deque(maxlen=MAIL_KEPT)
        self.received = 0
        self.server: asyncio.Server | None = None

    @property
    def listening(self) -> bool:
        """True while the SMTP listener runs."""
        return self.server is not None

    async def start(self) -> None:
        """Listen in the serving loop; a port in use is logged and leaves the catcher off."""
        if not self.port:
            return
        # aiosmtpd logs every command at INFO, AUTH lines with credentials included.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            # Plain-text login on the loopback only; the credentials are never kept.
            return SMTP(
                self,
                hostname="sandbox.local",
                authenticator=accept_any_login,
                auth_require_tls=False,
            )

        try:
            self.server = await loop.create_server(protocol, host="127.0.0.1", port=self.port)
        except OSError as error:
            # The sandbox is still useful without mail; a second one on a machine is common.
            logger.warning("mail catcher off: cannot listen on port %s (%s)", self.port, error)
            return
        logger.info("mail catcher listening on 127.0.0.1:%s", self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep a message the client finished sending."""
        self.received += 1
        mail = parse_mail(self.received, self.clock.now(), envelope)
        self.messages.appendleft(mail)
        logger.info(
            "mail %s caught: %d bytes for %d recipients", mail.id, mail.size, len(mail.rcpt_tos)
        )
        return "250 Message accepted for delivery"

    def get(self, mail_id: int) -> CaughtMail | None:
        """The kept message with this id, or None."""
        return next((mail for mail in self.messages if mail.id == mail_id), None)


def accept_any_login(*_: Any) -> AuthResult:
    """Any user name and password will do: a shop configured to log in still sends here."""
    return AuthResult(success=True)


def catcher() -> MailCatcher:
    """The mail catcher of the app serving this request."""
    return current_app.extensions["sandbox_mail"]


@mail_pages.get("/mail")
async def mail_list() -> str:
    """Every kept message, newest first."""
    return await render_template("mail.html", catcher=catcher(), messages=list(catcher().messages))


@mail_pages.get("/mail.json")
async def mail_json() -> dict[str, Any]:
    """The kept messages as JSON, newest first, for tests."""
    box = catcher()
    return {
        "object": "sandbox.mail",
        "port": box.port,
        "listening": box.listening,
        "data": [mail.summary() for mail in box.messages],
    }


@mail_pages.get("/mail/<int:mail_id>")
async def mail_message(mail_id: int) -> str:
    """One message: headers, its plain text, and its HTML shown as escaped text."""
    mail = catcher().get(mail_id)
    if mail is None:
        abort(404)
    return await render_template("mail_message.html", mail=mail)
