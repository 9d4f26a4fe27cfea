"""Receipt Argon2id parameters: a new installation pins the receipt set, an installation set up
before keeps what its receipts were made with (issue 17, point 1).

Runs `portal init` as a real process with the production Argon2 profile, then serves the real
app in-process: a report submitted under the old parameters must still sign in after the
upgraded code's `portal init` ran.
"""

from __future__ import annotations

from pathlib import Path

from litestar.testing import TestClient

from crypto.keyring import RECEIPT_PARAMS_FILE, load_keyring
from crypto.params import (
    LEGACY_RECEIPT_ARGON2,
    MIN_PRODUCTION_ARGON2,
    PRODUCTION_ARGON2,
    RECEIPT_ARGON2,
)
from portal.kernel.settings import Settings
from tests.conftest import BASE_URL
from tests.portal.test_cli import env, portal  # noqa: F401
from tests.portal.test_reporter_journeys import receipt_of, report_fields, sign_in, submit

LEGACY_LINE = "argon2id v=19 m=131072 t=3 p=2\n"
NEW_LINE = "argon2id v=19 m=32768 t=2 p=1\n"


def _production(env: dict[str, str]) -> dict[str, str]:  # noqa: F811
    return {**env, "PORTAL_ARGON2_PROFILE": "production"}


def _pin_file(env: dict[str, str]) -> Path:  # noqa: F811
    return Path(env["PORTAL_DATA_DIR"]) / "secrets" / RECEIPT_PARAMS_FILE


def _init(env: dict[str, str]) -> str:  # noqa: F811
    out = portal(env, "init")
    assert out.returncode == 0, out.stderr
    return out.stdout


def _submit_report(env: dict[str, str]) -> tuple[str, object]:  # noqa: F811
    """One report through the real app built from `env`; (receipt code, receipt params used)."""
    from portal.app import create_app
    from portal.app.wiring import build_services

    settings = Settings.from_env(env)
    services = build_services(settings)
    with TestClient(create_app(settings, services), base_url=BASE_URL) as client:
        client.headers["accept-language"] = "en"
        page = submit(client, report_fields())
        assert page.status_code == 200, page.text[:300]
        return receipt_of(page), services.receipt_argon2


def _signs_in(env: dict[str, str], code: str) -> bool:  # noqa: F811
    from portal.app import create_app
    from portal.app.wiring import build_services

    settings = Settings.from_env(env)
    services = build_services(settings)
    with TestClient(create_app(settings, services), base_url=BASE_URL) as client:
        client.headers["accept-language"] = "en"
        answer = sign_in(client, code)
        return answer.status_code == 303 and answer.headers["location"] == "/follow-up/case"


def test_receipt_parameters_cost_at_most_a_quarter_of_the_staff_ones() -> None:
    """The receipt set: at most a quarter of the memory and of the memory x passes of the
    parameters receipts used before; staff passwords keep at least today's cost."""
    assert RECEIPT_ARGON2.memory_kib * 4 <= LEGACY_RECEIPT_ARGON2.memory_kib
    assert (
        RECEIPT_ARGON2.memory_kib * RECEIPT_ARGON2.iterations * 4
        <= LEGACY_RECEIPT_ARGON2.memory_kib * LEGACY_RECEIPT_ARGON2.iterations
    )
    assert PRODUCTION_ARGON2.memory_kib >= 128 * 1024 and PRODUCTION_ARGON2.iterations >= 3
    assert PRODUCTION_ARGON2.memory_kib >= MIN_PRODUCTION_ARGON2.memory_kib
    # never changes: installations set up before pinning are served with it
    assert (LEGACY_RECEIPT_ARGON2.memory_kib, LEGACY_RECEIPT_ARGON2.iterations) == (131072, 3)
    assert LEGACY_RECEIPT_ARGON2.lanes == 2


def test_a_new_installation_pins_the_receipt_parameters(env: dict[str, str]) -> None:  # noqa: F811
    prod = _production(env)
    out = _init(prod)
    assert "receipt codes: Argon2id m=32768 KiB t=2 p=1 (pinned in the keyring)" in out
    assert _pin_file(prod).read_text() == NEW_LINE
    assert load_keyring(_pin_file(prod).parent).receipt_argon2 == RECEIPT_ARGON2
    code, used = _submit_report(prod)
    assert used == RECEIPT_ARGON2
    assert _signs_in(prod, code)


def test_an_installation_pinned_under_the_old_parameters_keeps_them(
    env: dict[str, str],  # noqa: F811
) -> None:
    """Set up by the previous release, which pinned 128 MiB, t=3, p=2: its receipts still sign
    in after the upgraded code's `portal init`, which leaves the pin alone."""
    prod = _production(env)
    _init(prod)
    _pin_file(prod).write_text(LEGACY_LINE)  # what the previous release's `portal init` wrote
    code, used = _submit_report(prod)
    assert used == LEGACY_RECEIPT_ARGON2
    upgraded = _init(prod)  # `make run` runs it at every start
    assert "receipt codes: Argon2id m=131072 KiB t=3 p=2 (pinned in the keyring)" in upgraded
    assert _pin_file(prod).read_text() == LEGACY_LINE
    assert _signs_in(prod, code)


def test_an_installation_from_before_pinning_keeps_its_parameters(
    env: dict[str, str],  # noqa: F811
) -> None:
    """Set up before receipt parameters were pinned (no pin file; receipts made with 128 MiB,
    t=3, p=2): it is served with those, and the upgraded `portal init` pins those, never the
    new defaults, so every receipt still signs in."""
    prod = _production(env)
    _init(prod)
    _pin_file(prod).unlink()  # the keyring of a release that did not pin yet
    code, used = _submit_report(prod)
    assert used == LEGACY_RECEIPT_ARGON2
    assert _signs_in(prod, code)
    upgraded = _init(prod)
    assert "receipt codes: Argon2id m=131072 KiB t=3 p=2 (pinned in the keyring)" in upgraded
    assert _pin_file(prod).read_text() == LEGACY_LINE
    assert _signs_in(prod, code)
