"""TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps, what every app supports).

* Secrets are 160 random bits, sealed at rest (in the installation's suite: SM4-GCM on a
  国密 installation) under the installation's server key with
  associated data binding them to the user id, so a sealed secret copied to another account
  does not open.
* A code is accepted for the current step or one step either side (clock drift), and only for
  a step later than the last one accepted for that user (``users.totp_last_step``): a code is
  never accepted twice, even within its own 30 seconds. The caller makes the step update
  atomic (``UPDATE ... WHERE totp_last_step < :step``) so two concurrent requests cannot both
  use the same code.
* The enrolment QR code is an SVG made on the server and embedded as a ``data:`` image
  (the CSP allows ``img-src data:``; no inline style, no script).
"""

from __future__ import annotations

import base64
import hmac
import io
import time

import pyotp
import segno

from crypto.envelope import bind_aad, open_sealed, seal
from crypto.suites import Suite

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1
ISSUER = "Whistle Portal"


def new_secret() -> str:
    """A fresh base32 secret (160 bits from the OS CSPRNG)."""
    return pyotp.random_base32(length=32)


def _aad(user_id: str) -> bytes:
    return bind_aad("totp-secret", user_id)


def seal_secret(
    server_key: bytes, user_id: str, secret: str, *, suite: Suite = Suite.AES256GCM
) -> bytes:
    """The sealed secret to store; ``suite`` is the installation's (``keyring.suite``).
    Opening reads the suite from the blob, so secrets sealed under either suite open."""
    return seal(server_key, secret.encode("ascii"), _aad(user_id), suite=suite)


def open_secret(server_key: bytes, user_id: str, sealed: bytes) -> str:
    """The secret; crypto.errors.DecryptionError if the blob is not this user's."""
    return open_sealed(server_key, sealed, _aad(user_id)).decode("ascii")


def provisioning_uri(secret: str, username: str, issuer: str = ISSUER) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=username, issuer_name=issuer
    )


def qr_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as ``data:image/svg+xml;base64,...`` for an ``<img src>``."""
    qr = segno.make(uri, error="m", micro=False)
    buf = io.BytesIO()
    qr.save(buf, kind="svg", scale=5, border=4, dark="#000", light="#fff", xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def normalise_code(code: str) -> str | None:
    """Six ASCII digits (spaces and dashes people type are dropped), or None."""
    cleaned = code.replace(" ", "").replace("-", "")
    if len(cleaned) != DIGITS or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def matching_step(
    secret: str, code: str, *, last_step: int, now: float | None = None
) -> int | None:
    """The time step ``code`` is valid for (within +-WINDOW of now and later than
    ``last_step``), or None. Compares in constant time."""
    cleaned = normalise_code(code)
    if cleaned is None:
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    step = current_step(now)
    found: int | None = None
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        expected = otp.generate_otp(candidate)
        if hmac.compare_digest(expected.encode(), cleaned.encode()) and candidate > last_step:
            found = candidate if found is None else found
    return found
