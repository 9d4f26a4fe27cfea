"""Receipt derivations run in their own threads at a lower priority than the serving thread,
so pages stay quick while the cores are busy with a burst of submissions (issue 17)."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

import portal.reporter.submission as reporter_submission
from crypto.receipts import generate_receipt, normalize_receipt
from portal.kernel.services import Services

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


async def test_derivations_run_in_nicer_threads(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, int]] = []
    real = reporter_submission.derive_receipt_secrets

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append((threading.current_thread().name, _nice()))
        return real(*args, **kwargs)

    monkeypatch.setattr(reporter_submission, "derive_receipt_secrets", recording)
    code = normalize_receipt(generate_receipt())
    first = await reporter_submission.derive(services, code)
    again = await reporter_submission.derive(services, code)
    assert first.lookup_token == again.lookup_token
    assert len(seen) == 2
    for name, nice in seen:
        assert name.startswith("receipt-argon2")
        assert nice >= min(19, _nice() + reporter_submission.DERIVATION_NICENESS)
    assert _nice() < 19  # the serving thread itself was left alone
