"""Installation keyring: the secrets kept outside the database (requirements C1, C3).

A keyring is a directory (mode 0700) holding three files (mode 0600)::

    pepper.key      32 random bytes: receipt-code pepper (C3), and the root of the staff
                    password pepper (crypto.pepper: its own HKDF sub-keys)
    server.key      32 random bytes: seals server-side secrets (TOTP secrets, session data)
    suite           the cipher suite name, "aes256gcm" or "sm4gcm", and a newline
    receipt-argon2  the Argon2id parameters receipt codes are derived with, pinned when the
                    installation is set up (``pin_receipt_params``): every receipt lookup token
                    depends on them, so a later release that ships other defaults keeps using
                    the installation's own (optional: older installations get it at
                    ``portal init``)

Back it up separately from the database: the database without the keyring cannot be
searched for receipt codes, and losing the keyring makes every receipt code useless.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import KeyringError
from crypto.params import Argon2Params, check_stored_params
from crypto.pepper import PasswordPepper
from crypto.suites import Suite, self_test, suite_by_name

__all__ = [
    "KEYRING_FILES",
    "RECEIPT_PARAMS_FILE",
    "Keyring",
    "create_keyring",
    "keyring_exists",
    "keyring_fingerprint",
    "load_keyring",
    "pin_receipt_params",
]

PEPPER_FILE = "pepper.key"
SERVER_KEY_FILE = "server.key"
SUITE_FILE = "suite"
KEYRING_FILES = (PEPPER_FILE, SERVER_KEY_FILE, SUITE_FILE)
RECEIPT_PARAMS_FILE = "receipt-argon2"
_KEY_SIZE = 32
_MAX_SUITE_FILE = 64
_MAX_PARAMS_FILE = 128
_PARAMS_LINE = re.compile(r"argon2id v=19 m=(\d{1,9}) t=(\d{1,4}) p=(\d{1,3})\n?")
_FINGERPRINT_INFO = b"whistle-portal/v1/keyring-fingerprint/"
_FIX = "Run `portal init` to create a new keyring, or restore it from your backup."


@dataclass(frozen=True)
class Keyring:
    pepper: bytes = field(repr=False)
    server_key: bytes = field(repr=False)
    suite: Suite
    receipt_argon2: Argon2Params | None = None  # None: not pinned yet (older installation)

    @property
    def password_pepper(self) -> PasswordPepper:
        """The secret staff password hashes and password seals depend on (crypto.pepper)."""
        return PasswordPepper(secret=self.pepper, suite=self.suite)


def keyring_exists(directory: Path) -> bool:
    """True if any keyring file exists in ``directory`` (then ``create_keyring`` refuses)."""
    return any(os.path.lexists(Path(directory) / name) for name in KEYRING_FILES)


def _write_temp(directory: Path, content: bytes) -> Path:
    for _ in range(16):
        tmp = directory / f".tmp-{os.urandom(8).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return tmp
    raise KeyringError(f"could not create a temporary file in {directory}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _format_params(params: Argon2Params) -> bytes:
    return f"argon2id v=19 m={params.memory_kib} t={params.iterations} p={params.lanes}\n".encode(
        "ascii"
    )


def _parse_params(path: Path, raw: bytes) -> Argon2Params:
    match = _PARAMS_LINE.fullmatch(raw.decode("ascii", "replace"))
    try:
        if match is None:
            raise ValueError("malformed")
        params = Argon2Params(int(match[1]), int(match[2]), int(match[3]))
        check_stored_params(params)
    except (TypeError, ValueError):
        raise KeyringError(
            f"Keyring file {path} does not hold valid Argon2id parameters "
            "(expected e.g. 'argon2id v=19 m=131072 t=3 p=2'). Restore it from your backup: "
            "receipt codes cannot be found without the parameters they were made with."
        ) from None
    return params


def pin_receipt_params(directory: Path, params: Argon2Params) -> Argon2Params:
    """The receipt parameters of the installation: those already pinned in ``directory``, or
    ``params``, written now (atomically, never over an existing file) and returned."""
    directory = Path(directory)
    path = directory / RECEIPT_PARAMS_FILE
    if os.path.lexists(path):
        return _parse_params(path, _read_secret_file(path, _MAX_PARAMS_FILE))
    tmp = _write_temp(directory, _format_params(params))
    try:
        os.link(tmp, path)
    except FileExistsError:  # another `portal init` won the race: theirs stands
        return _parse_params(path, _read_secret_file(path, _MAX_PARAMS_FILE))
    except OSError as exc:
        raise KeyringError(f"Cannot write {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    _fsync_dir(directory)
    return params


def create_keyring(directory: Path, suite: Suite = Suite.AES256GCM) -> Keyring:
    """Create a new keyring in ``directory`` (created with mode 0700 if needed).

    Never overwrites: KeyringError if any keyring file already exists. Files appear
    complete (written to temporary files, fsynced, then hard-linked into place, which fails if
    the name exists); on failure the files created so far are removed.
    """
    directory = Path(directory)
    self_test(suite)
    if keyring_exists(directory):
        raise KeyringError(
            f"A keyring already exists in {directory}; refusing to overwrite it. "
            "Move it away first if you really mean to replace it (every existing receipt "
            "code and sealed secret would become unreadable)."
        )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise KeyringError(f"cannot create keyring directory {directory}: {exc.strerror}") from exc
    keyring = Keyring(pepper=os.urandom(_KEY_SIZE), server_key=os.urandom(_KEY_SIZE), suite=suite)
    contents = {
        PEPPER_FILE: keyring.pepper,
        SERVER_KEY_FILE: keyring.server_key,
        SUITE_FILE: (suite.label + "\n").encode("ascii"),
    }
    created: list[Path] = []
    temps: list[Path] = []
    try:
        for name, content in contents.items():
            tmp = _write_temp(directory, content)
            temps.append(tmp)
            final = directory / name
            try:
                os.link(tmp, final)
            except FileExistsError:
                raise KeyringError(
                    f"{final} appeared while creating the keyring; refusing to overwrite it."
                ) from None
            created.append(final)
        _fsync_dir(directory)
    except BaseException as exc:
        for path in created:
            with contextlib.suppress(OSError):
                path.unlink()
        if isinstance(exc, OSError):
            raise KeyringError(f"Cannot write the keyring in {directory}: {exc}") from exc
        raise
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return keyring


def _read_secret_file(path: Path, max_size: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyringError(f"Keyring file {path} is missing. {_FIX}") from None
    except PermissionError:
        raise KeyringError(
            f"Keyring file {path} is not readable by this user (uid {os.geteuid()}). "
            "Run the portal as the owner of the keyring."
        ) from None
    except OSError as exc:
        raise KeyringError(f"Cannot open keyring file {path}: {exc.strerror}. {_FIX}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyringError(f"Keyring file {path} is not a regular file. {_FIX}")
        if info.st_mode & 0o077:
            raise KeyringError(
                f"Keyring file {path} is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`, and "
                "consider the installation's secrets exposed if others could read it."
            )
        data = b""
        while len(data) <= max_size:
            block = os.read(fd, max_size + 1 - len(data))
            if not block:
                break
            data += block
        return data
    finally:
        os.close(fd)


def load_keyring(directory: Path) -> Keyring:
    """Load and check the keyring in ``directory``; runs the suite's known-answer tests.

    KeyringError with a message naming the file, the problem and the fix.
    """
    directory = Path(directory)
    try:
        dir_info = os.stat(directory)
    except FileNotFoundError:
        raise KeyringError(f"Keyring directory {directory} does not exist. {_FIX}") from None
    except OSError as exc:
        raise KeyringError(f"Cannot access keyring directory {directory}: {exc.strerror}") from exc
    if not stat.S_ISDIR(dir_info.st_mode):
        raise KeyringError(f"Keyring path {directory} is not a directory. {_FIX}")
    if dir_info.st_mode & 0o022:
        raise KeyringError(
            f"Keyring directory {directory} is writable by group or others "
            f"(mode {stat.S_IMODE(dir_info.st_mode):04o}); run `chmod 700 {directory}`."
        )
    secrets: dict[str, bytes] = {}
    for name in (PEPPER_FILE, SERVER_KEY_FILE):
        path = directory / name
        data = _read_secret_file(path, _KEY_SIZE)
        if len(data) != _KEY_SIZE:
            size = f"{len(data)}" if len(data) <= _KEY_SIZE else f"more than {_KEY_SIZE}"
            raise KeyringError(
                f"Keyring file {path} has the wrong size: expected {_KEY_SIZE} bytes, "
                f"found {size}. It is damaged; restore it from your backup. {_FIX}"
            )
        secrets[name] = data
    suite_path = directory / SUITE_FILE
    raw_suite = _read_secret_file(suite_path, _MAX_SUITE_FILE)
    try:
        suite = suite_by_name(raw_suite.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyringError(
            f"Keyring file {suite_path} does not name a known cipher suite "
            "(expected 'aes256gcm' or 'sm4gcm')."
        ) from None
    self_test(suite)
    params_path = directory / RECEIPT_PARAMS_FILE
    receipt_argon2 = (
        _parse_params(params_path, _read_secret_file(params_path, _MAX_PARAMS_FILE))
        if os.path.lexists(params_path)
        else None
    )
    return Keyring(
        pepper=secrets[PEPPER_FILE],
        server_key=secrets[SERVER_KEY_FILE],
        suite=suite,
        receipt_argon2=receipt_argon2,
    )


def keyring_fingerprint(keyring: Keyring) -> str:
    """A one-way, keyed fingerprint of the keyring (hex), recorded in the database at
    ``portal init`` so that a database and a keyring that do not belong together are told
    apart (requirement C7).

    HKDF over the keyring's two secrets with its own label (and the suite's name), over SM3 for
    the 国密 suite and SHA-256 otherwise: the output is unrelated to every key the portal
    derives from the same secrets, and learning it reveals nothing usable about them (finding
    secrets that match it is a 2^256 search).
    """
    algorithm: hashes.HashAlgorithm = (
        hashes.SM3() if keyring.suite is Suite.SM4GCM else hashes.SHA256()
    )
    derived = HKDF(
        algorithm=algorithm,
        length=32,
        salt=None,
        info=_FINGERPRINT_INFO + keyring.suite.label.encode("ascii"),
    ).derive(keyring.server_key + keyring.pepper)
    return derived.hex()
