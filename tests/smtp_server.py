"""A real SMTP server on localhost (aiosmtpd) that keeps what it receives, and can refuse."""

from __future__ import annotations

import email
import socket
from email import policy
from email.message import EmailMessage  # noqa: F401

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """Messages received; the first `refuse` deliveries get `reply` (e.g. "451 try later")."""

    def __init__(self, refuse: int = 0, reply: str = "451 4.3.0 try again later"):
        self.messages: list[EmailMessage] = []
        self.attempts = 0
        self.refuse, self.reply = refuse, reply

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's name)
        self.attempts += 1
        if self.attempts <= self.refuse:
            return self.reply
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class SmtpServer:
    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox
        self.port = free_port()
        self.controller = Controller(mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def env(self) -> dict[str, str]:
        return {
            "GETTOK_SMTP_HOST": "127.0.0.1",
            "GETTOK_SMTP_PORT": str(self.port),
            "GETTOK_SMTP_STARTTLS": "false",
            "GETTOK_SMTP_TO": '["desk@example.org"]',
            "GETTOK_SMTP_FROM": "gettok@example.org",
        }

    def stop(self) -> None:
        self.controller.stop()
