from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crypto.errors import KeyringError, SuiteUnavailableError
from crypto.keyring import (
    KEYRING_FILES,
    PEPPER_FILE,
    SERVER_KEY_FILE,
    SUITE_FILE,
    create_keyring,
    keyring_exists,
    load_keyring,
)
from crypto.suites import Suite


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("suite", list(Suite))
def test_create_then_load(tmp_path: Path, suite: Suite) -> None:
    directory = tmp_path / "keys" / "nested"
    assert not keyring_exists(directory)
    created = create_keyring(directory, suite)
    assert keyring_exists(directory)
    assert mode(directory) == 0o700
    for name in KEYRING_FILES:
        assert mode(directory / name) == 0o600
    assert sorted(p.name for p in directory.iterdir()) == sorted(KEYRING_FILES)  # no temp left
    loaded = load_keyring(directory)
    assert loaded == created and loaded.suite is suite
    assert len(loaded.pepper) == 32 and len(loaded.server_key) == 32
    assert loaded.pepper != loaded.server_key
    assert loaded.pepper.hex() not in repr(loaded)
    assert loaded.server_key.hex() not in repr(loaded)


def test_never_overwrites(tmp_path: Path) -> None:
    first = create_keyring(tmp_path)
    with pytest.raises(KeyringError, match="refusing to overwrite"):
        create_keyring(tmp_path)
    assert load_keyring(tmp_path) == first


@pytest.mark.parametrize("name", KEYRING_FILES)
def test_never_overwrites_a_single_existing_file(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"precious")
    with pytest.raises(KeyringError):
        create_keyring(tmp_path)
    assert (tmp_path / name).read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_rollback_when_a_file_appears_during_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        if str(dst).endswith(SUITE_FILE):
            Path(dst).write_text("sm4gcm\n")  # another process won the race
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeyringError):
        create_keyring(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [SUITE_FILE]


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match=r"does not exist.*portal init"):
        load_keyring(tmp_path / "nope")


@pytest.mark.parametrize("name", KEYRING_FILES)
def test_missing_file(tmp_path: Path, name: str) -> None:
    create_keyring(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(KeyringError, match=f"{name} is missing.*portal init"):
        load_keyring(tmp_path)


@pytest.mark.parametrize("name", [PEPPER_FILE, SERVER_KEY_FILE])
@pytest.mark.parametrize("size", [0, 31, 33, 4096])
def test_wrong_size(tmp_path: Path, name: str, size: int) -> None:
    create_keyring(tmp_path)
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    with pytest.raises(KeyringError, match=f"{name} has the wrong size"):
        load_keyring(tmp_path)


@pytest.mark.parametrize("name", KEYRING_FILES)
@pytest.mark.parametrize("bad_mode", [0o640, 0o604, 0o644, 0o660])
def test_group_or_other_readable_file(tmp_path: Path, name: str, bad_mode: int) -> None:
    create_keyring(tmp_path)
    os.chmod(tmp_path / name, bad_mode)
    with pytest.raises(KeyringError, match=rf"{name} is accessible by group or others.*chmod 600"):
        load_keyring(tmp_path)


def test_writable_directory_refused(tmp_path: Path) -> None:
    create_keyring(tmp_path / "k")
    os.chmod(tmp_path / "k", 0o777)
    with pytest.raises(KeyringError, match="writable by group or others"):
        load_keyring(tmp_path / "k")


def test_symlinked_file_refused(tmp_path: Path) -> None:
    create_keyring(tmp_path / "k")
    target = tmp_path / "elsewhere"
    (tmp_path / "k" / PEPPER_FILE).rename(target)
    (tmp_path / "k" / PEPPER_FILE).symlink_to(target)
    with pytest.raises(KeyringError):
        load_keyring(tmp_path / "k")


def test_bad_suite_file(tmp_path: Path) -> None:
    create_keyring(tmp_path)
    (tmp_path / SUITE_FILE).write_text("rot13\n")
    with pytest.raises(KeyringError, match="known cipher suite"):
        load_keyring(tmp_path)


def test_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(KeyringError, match="not a directory"):
        load_keyring(tmp_path / "file")


def test_load_runs_self_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    create_keyring(tmp_path, Suite.SM4GCM)
    from crypto import keyring

    def broken(suite: Suite) -> None:
        raise SuiteUnavailableError("no SM4")

    monkeypatch.setattr(keyring, "self_test", broken)
    with pytest.raises(SuiteUnavailableError):
        load_keyring(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    create_keyring(tmp_path)
    os.chmod(tmp_path / PEPPER_FILE, 0o000)
    with pytest.raises(KeyringError, match="not readable"):
        load_keyring(tmp_path)


# --- the receipt parameters, pinned at set-up ------------------------------------------------


def test_receipt_params_are_pinned_once_and_kept(tmp_path: Path) -> None:
    from crypto.keyring import RECEIPT_PARAMS_FILE, pin_receipt_params
    from crypto.params import PRODUCTION_ARGON2, TEST_ARGON2

    create_keyring(tmp_path)
    assert load_keyring(tmp_path).receipt_argon2 is None  # an older installation
    assert pin_receipt_params(tmp_path, TEST_ARGON2) == TEST_ARGON2
    path = tmp_path / RECEIPT_PARAMS_FILE
    assert path.read_text() == "argon2id v=19 m=8192 t=1 p=1\n"
    assert mode(path) == 0o600
    # a later release with other defaults: the pinned ones stand, the file is not touched
    assert pin_receipt_params(tmp_path, PRODUCTION_ARGON2) == TEST_ARGON2
    assert path.read_text() == "argon2id v=19 m=8192 t=1 p=1\n"
    assert load_keyring(tmp_path).receipt_argon2 == TEST_ARGON2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"argon2id v=19 m=8192 t=1\n",
        b"argon2i v=19 m=8192 t=1 p=1\n",
        b"argon2id v=19 m=999999999 t=1 p=1\n",  # above MAX_ARGON2: would allocate ~1 TB
        b"argon2id v=19 m=8192 t=0 p=1\n",
        b"argon2id v=19 m=8192 t=1 p=1\n" * 10,
    ],
)
def test_damaged_receipt_params_are_refused_clearly(tmp_path: Path, content: bytes) -> None:
    from crypto.keyring import RECEIPT_PARAMS_FILE

    create_keyring(tmp_path)
    path = tmp_path / RECEIPT_PARAMS_FILE
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyringError, match=RECEIPT_PARAMS_FILE):
        load_keyring(tmp_path)
