"""The runtime services one installation needs, built once from Settings.

Framework-free: the web layer reaches them through `app.state.services`.
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto.errors import KeyringError
from crypto.keyring import Keyring, load_keyring
from crypto.params import (
    LEGACY_RECEIPT_ARGON2,
    MIN_RECEIPT_ARGON2,
    PRODUCTION_ARGON2,
    RECEIPT_ARGON2,
    TEST_ARGON2,
    Argon2Params,
)
from portal.kernel.db.engine import Database
from portal.kernel.settings import Settings
from portal.kernel.storage import FileStore, LocalFileStore


@dataclass
class Services:
    settings: Settings
    db: Database
    keyring: Keyring
    files: FileStore
    argon2: Argon2Params  # staff passwords and recovery keys (their blobs keep their own)
    receipt_argon2: Argon2Params  # receipt codes: pinned in the keyring (`receipt_params`)

    async def close(self) -> None:
        await self.db.dispose()


# an upload that has not written for this long is a crash's leftover (other instances may be
# uploading while one starts: their .part files are younger)
STALE_UPLOAD_S = 3600.0


def argon2_params(settings: Settings) -> Argon2Params:
    return PRODUCTION_ARGON2 if settings.argon2_profile == "production" else TEST_ARGON2


def new_receipt_params(settings: Settings) -> Argon2Params:
    """What `portal init` pins for the receipt codes of a new installation."""
    return RECEIPT_ARGON2 if settings.argon2_profile == "production" else TEST_ARGON2


def unpinned_receipt_params(settings: Settings) -> Argon2Params:
    """What an installation whose keyring has no pinned receipt parameters made its receipts
    with: it was set up before pinning existed, when receipts used the staff parameters."""
    return LEGACY_RECEIPT_ARGON2 if settings.argon2_profile == "production" else TEST_ARGON2


def receipt_params(settings: Settings, keyring: Keyring) -> Argon2Params:
    """The parameters receipt codes are derived with: those pinned in the keyring at set-up
    (`portal init`), so changing the shipped defaults never orphans a receipt; an
    installation set up before pinning existed uses the parameters it was made with."""
    params = keyring.receipt_argon2 or unpinned_receipt_params(settings)
    if settings.argon2_profile == "production" and (
        params.memory_kib < MIN_RECEIPT_ARGON2.memory_kib
        or params.iterations < MIN_RECEIPT_ARGON2.iterations
    ):
        raise KeyringError(
            "The receipt parameters pinned in the keyring are below the production floor "
            "(the installation was set up in test mode). Set it up again for production."
        )
    return params


def file_store(settings: Settings) -> FileStore:
    """The local store, or the S3-compatible one when PORTAL_S3_BUCKET is set (O2)."""
    if not settings.s3_bucket:
        # one serving process on SQLite: every .part at start is a crash's leftover
        return LocalFileStore(
            settings.files_dir, stale_after_s=0.0 if settings.is_sqlite else STALE_UPLOAD_S
        )
    from portal.kernel.s3store import S3Config, S3FileStore

    return S3FileStore(
        S3Config(
            bucket=settings.s3_bucket,
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region,
        )
    )


def open_services(settings: Settings) -> Services:
    """Load the keyring (clear error if `portal init` was never run) and open the stores.

    The workflow's commit hooks (deadlines follow stage changes) are added by the composition
    root, ``portal.app.wiring.build_services``: the kernel knows no workflow."""
    from portal.kernel.audit_anchor import anchor_hook

    keyring = load_keyring(settings.keyring_dir)
    db = Database(settings.database_url)
    db.post_commit_hooks.append(anchor_hook(settings.data_dir))  # the audit head, outside
    return Services(
        settings=settings,
        db=db,
        keyring=keyring,
        files=file_store(settings),
        argon2=argon2_params(settings),
        receipt_argon2=receipt_params(settings, keyring),
    )
