"""Subject names: normalisation and the keyed fingerprint of the repeat-subject ledger (W14)."""

from __future__ import annotations

import hmac

from portal.case.sealing import server_subkey
from portal.kernel.services import Services


def normalise_name(name: str) -> str:
    """How subject names are compared: all white space removed, case folded (the same rule as
    ``portal.case.subjects.subject_fingerprint``)."""
    return "".join(name.split()).casefold()


def subject_fingerprint(services: Services, name: str) -> bytes | None:
    """Keyed fingerprint of a normalised name for the repeat-subject ledger (W14)."""
    norm = normalise_name(name)
    if not norm:
        return None
    return hmac.new(
        server_subkey(services, "subject-fingerprint"), norm.encode(), "sha256"
    ).digest()
