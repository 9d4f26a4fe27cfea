"""Sending e-mail over SMTP (staff notifications, reporters' "there is news" mails).

Framework-free. ``smtplib`` runs in a worker thread (``anyio.to_thread``) so a slow mail
server never blocks the event loop. Settings (``portal.kernel.settings``): ``PORTAL_SMTP_HOST`` (no
host: nothing is sent, and ``send`` says so), ``PORTAL_SMTP_PORT`` (587), ``PORTAL_SMTP_STARTTLS``
(1: the connection is upgraded with STARTTLS and the server certificate is verified against
the system's trust store before any login or message; 0 only for a relay on loopback),
``PORTAL_SMTP_USER`` / ``PORTAL_SMTP_PASSWORD`` (``_FILE`` accepted; login only after
STARTTLS when STARTTLS is on), ``PORTAL_SMTP_SENDER``.

What a message never carries: a Date header or a Message-ID made from the clock (the relay
adds its own Date; ours would add nothing but a precise time), an X-Mailer, or anything the
caller did not put in the subject and body.
"""

from __future__ import annotations

import secrets
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage

import anyio.to_thread

from portal.kernel.settings import Settings

SMTP_TIMEOUT_S = 30


class MailError(Exception):
    """The mail server could not be reached or refused us; nothing is lost (callers retry)."""


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


def build_message(settings: Settings, mail: Mail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    domain = settings.smtp_sender.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.body, charset="utf-8")
    return msg


class Mailer:
    def __init__(self, settings: Settings, tls_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self._tls = tls_context

    @property
    def configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def _open(self, smtp: smtplib.SMTP) -> None:
        """EHLO, STARTTLS (certificate checked) and login, as configured."""
        s = self.settings
        smtp.ehlo()
        if s.smtp_starttls:
            smtp.starttls(context=self._tls or ssl.create_default_context())
            smtp.ehlo()
        if s.smtp_user:
            smtp.login(s.smtp_user, s.smtp_password or "")

    def probe_sync(self) -> None:
        """Connect, STARTTLS and log in as a send would, then quit (`portal check`);
        ``MailError`` when the server cannot be used."""
        s = self.settings
        if not s.smtp_host:
            raise MailError("no mail server configured (PORTAL_SMTP_HOST)")
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
                self._open(smtp)
                smtp.noop()
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {s.smtp_host}:{s.smtp_port}: {type(exc).__name__}") from exc

    def _send_sync(self, mails: Sequence[Mail]) -> list[str]:
        s = self.settings
        assert s.smtp_host
        refused: list[str] = []
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
                self._open(smtp)
                for mail in mails:
                    try:
                        smtp.send_message(build_message(s, mail))
                    except smtplib.SMTPRecipientsRefused:
                        refused.append(mail.to)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {s.smtp_host}:{s.smtp_port}: {type(exc).__name__}") from exc
        return refused

    async def send(self, mails: Sequence[Mail]) -> list[str]:
        """Send over one connection; returns the refused recipient addresses. ``MailError``
        when the server cannot be used at all (then nothing counts as sent)."""
        if not mails:
            return []
        if not self.configured:
            raise MailError("no SMTP server configured (PORTAL_SMTP_HOST)")
        return await anyio.to_thread.run_sync(self._send_sync, list(mails))
