"""Argon2id parameters and raw key derivation.

:data:`PRODUCTION_ARGON2` (staff passwords, recovery keys) and :data:`RECEIPT_ARGON2` (receipt
codes of new installations) are justified, with their measured cost, in docs/security.md.
:data:`TEST_ARGON2` is for test suites only: it offers no meaningful resistance to guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

__all__ = [
    "LEGACY_RECEIPT_ARGON2",
    "MAX_ARGON2",
    "MIN_PRODUCTION_ARGON2",
    "MIN_RECEIPT_ARGON2",
    "PRODUCTION_ARGON2",
    "RECEIPT_ARGON2",
    "TEST_ARGON2",
    "Argon2Params",
    "derive_key",
]


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters (version 0x13 is always used)."""

    memory_kib: int
    iterations: int
    lanes: int

    def __post_init__(self) -> None:
        for name in ("memory_kib", "iterations", "lanes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Argon2Params.{name} must be an int")
        if not 1 <= self.lanes <= 255:
            raise ValueError("Argon2Params.lanes must be between 1 and 255")
        if self.iterations < 1:
            raise ValueError("Argon2Params.iterations must be at least 1")
        if self.memory_kib < 8 * self.lanes:
            raise ValueError("Argon2Params.memory_kib must be at least 8 * lanes")


#: Staff passwords and recovery keys (low-entropy secrets chosen by people): 128 MiB, 3 passes,
#: 2 lanes (about 0.23 s on the 2-core reference machine). Above RFC 9106's second recommended
#: option (64 MiB, t=3). Each hash records its own parameters, so changing them is safe.
PRODUCTION_ARGON2 = Argon2Params(memory_kib=128 * 1024, iterations=3, lanes=2)

#: Documented floor for staff passwords (RFC 9106 section 4, second recommended option).
MIN_PRODUCTION_ARGON2 = Argon2Params(memory_kib=64 * 1024, iterations=3, lanes=1)

#: Receipt codes of installations set up from now on: 32 MiB, 2 passes, 1 lane (about 45 ms of
#: one core on the reference machine: a sixth of the CPU time and a quarter of the memory of
#: :data:`LEGACY_RECEIPT_ARGON2`). A receipt code is not a password: 27 digits from the OS
#: CSPRNG (89.7 bits) keyed with the installation's 256-bit pepper; docs/security.md has the
#: arithmetic. Receipt lookup tokens depend on these values: `portal init` pins them in the
#: keyring (``pin_receipt_params``), so changing them here affects new installations only.
RECEIPT_ARGON2 = Argon2Params(memory_kib=32 * 1024, iterations=2, lanes=1)

#: What every installation derived receipt codes with before :data:`RECEIPT_ARGON2` existed
#: (then the same as :data:`PRODUCTION_ARGON2`). NEVER CHANGE: an installation set up before
#: the parameters were pinned has no pin file, and its receipts are found with these values.
LEGACY_RECEIPT_ARGON2 = Argon2Params(memory_kib=128 * 1024, iterations=3, lanes=2)

#: Floor for receipt parameters in production (refuses a keyring pinned in test mode).
MIN_RECEIPT_ARGON2 = Argon2Params(memory_kib=32 * 1024, iterations=2, lanes=1)

#: Upper bounds accepted when parameters are read back from a stored blob, so a crafted blob
#: cannot make the server allocate unbounded memory or spin for hours.
MAX_ARGON2 = Argon2Params(memory_kib=4 * 1024 * 1024, iterations=64, lanes=64)

#: TESTS ONLY. 8 MiB, one pass: fast, and worthless against guessing.
TEST_ARGON2 = Argon2Params(memory_kib=8 * 1024, iterations=1, lanes=1)


def check_stored_params(params: Argon2Params) -> None:
    """Raise ValueError if parameters read from storage exceed :data:`MAX_ARGON2`."""
    if (
        params.memory_kib > MAX_ARGON2.memory_kib
        or params.iterations > MAX_ARGON2.iterations
        or params.lanes > MAX_ARGON2.lanes
    ):
        raise ValueError("Argon2 parameters exceed the accepted maximum")


def derive_key(secret: bytes, salt: bytes, length: int, params: Argon2Params) -> bytes:
    """Raw Argon2id (v1.3) output of ``length`` bytes.

    CPU- and memory-heavy and synchronous: async callers must run it in a worker thread.
    The underlying C code releases the GIL and uses ``params.lanes`` threads.
    """
    if not isinstance(secret, bytes | bytearray):
        raise TypeError("secret must be bytes")
    if len(salt) < 8:
        raise ValueError("salt must be at least 8 bytes")
    if not 4 <= length <= 1024:
        raise ValueError("length must be between 4 and 1024 bytes")
    return hash_secret_raw(
        secret=bytes(secret),
        salt=bytes(salt),
        time_cost=params.iterations,
        memory_cost=params.memory_kib,
        parallelism=params.lanes,
        hash_len=length,
        type=Type.ID,
    )
