"""Benchmark of the crypto package (run by hand).

    .venv/bin/python bench/crypto_bench.py [--size-mib N] [--argon2-runs N] [--save]

Prints one table (bench/table.py: metric | value | target | met?); with --save also writes it
to bench/results/crypto.md.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from table import add_save_argument, check, info, measured, render, row, save

import crypto
from crypto import params as crypto_params
from crypto import receipts, recipients, stream
from crypto.params import RECEIPT_ARGON2

MIB = 1 << 20


def rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--argon2-runs", type=int, default=20)
    add_save_argument(parser)
    args = parser.parse_args()
    size = args.size_mib

    # The plaintext generator: one random 1 MiB block, with its first 8 bytes varied per block
    # so no two chunks are identical; the stream is never held whole.
    block = bytearray(os.urandom(MIB))

    def plaintext_chunks() -> object:
        for i in range(size):
            block[:8] = i.to_bytes(8, "big")
            yield bytes(block)

    gc.collect()
    baseline_rss = rss_mib()

    key = crypto.new_case_key()
    aad = crypto.field_aad("case-bench", "file:1")
    header = crypto.FileHeader("evidence.bin", "application/octet-stream", {})

    # Baselines, measured in a clean loop on a reused 1 MiB buffer (the best case for raw
    # AES-GCM) several times during the run; the *fastest* observation is kept, so every
    # ratio below is conservative. Raw SHA-256 + AES-GCM is the honest ceiling for the
    # encryptor, which must hash the plaintext for the trailer (R11).
    raw_aead = AESGCM(os.urandom(32))
    raw_nonce = os.urandom(12)
    raw_buf = bytes(block)
    clock = time.perf_counter
    raw_obs: list[float] = []
    raw_sha_obs: list[float] = []

    def baselines(mib: int = 128) -> None:
        t0 = clock()
        for _ in range(mib):
            raw_aead.encrypt(raw_nonce, raw_buf, b"bench")  # fixed nonce: speed only
        t1 = clock()
        digest = hashlib.sha256()
        for _ in range(mib):
            digest.update(raw_buf)
            raw_aead.encrypt(raw_nonce, raw_buf, b"bench")
        t2 = clock()
        raw_obs.append(mib / (t1 - t0))
        raw_sha_obs.append(mib / (t2 - t1))

    # Stream passes: pass "update" times StreamEncryptor.update on each fresh chunk and
    # StreamDecryptor.update on the record just produced; pass "parts" times
    # StreamEncryptor.update_parts (what encrypt_iter uses). Only one chunk and its record
    # are alive at a time.
    def stream_pass(mode: str) -> tuple[float, float]:
        encryptor = crypto.StreamEncryptor(key, aad, header)
        decryptor = crypto.StreamDecryptor(key, aad)
        decryptor.update(encryptor.start())
        enc_s = dec_s = 0.0
        for chunk in plaintext_chunks():  # type: ignore[attr-defined]
            if mode == "parts":
                t0 = clock()
                encryptor.update_parts(chunk)
                enc_s += clock() - t0
            else:
                t0 = clock()
                record = encryptor.update(chunk)
                t1 = clock()
                decryptor.update(record)
                t2 = clock()
                enc_s += t1 - t0
                dec_s += t2 - t1
                del record
        t0 = clock()
        last, _ = encryptor.finalize()
        t1 = clock()
        enc_s += t1 - t0
        if mode == "update":
            decryptor.update(last)
            decryptor.finalize()
            dec_s += clock() - t1
        return size / enc_s, size / dec_s if dec_s else 0.0

    baselines()
    enc_rate, dec_rate = stream_pass("update")
    baselines()
    enc_parts_rate, _ = stream_pass("parts")
    baselines()

    # Decryption of ciphertext arriving in 64 KiB pieces (as read from a socket or a file).
    piece = 64 * 1024
    encryptor = crypto.StreamEncryptor(key, aad, header)
    decryptor = crypto.StreamDecryptor(key, aad)
    decryptor.update(encryptor.start())
    dec64_s = 0.0
    unaligned_mib = min(size, 256)
    carry = b""
    for i in range(unaligned_mib):
        block[:8] = i.to_bytes(8, "big")
        chunk = bytes(block)
        data = carry + encryptor.update(chunk)
        cut = len(data) - len(data) % piece
        carry = data[cut:]
        t0 = clock()
        for off in range(0, cut, piece):
            decryptor.update(data[off : off + piece])
        dec64_s += clock() - t0
    last, _ = encryptor.finalize()
    decryptor.update(carry + last)
    decryptor.finalize()
    dec64_rate = unaligned_mib / dec64_s
    baselines()
    raw, raw_sha_rate = max(raw_obs), max(raw_sha_obs)

    peak_delta = rss_mib() - baseline_rss

    # Argon2id with the shipped parameters: staff passwords, and receipt codes.
    argon = median_seconds(
        lambda: crypto.derive_key(
            b"0123456789012345678901234567", os.urandom(16), 32, crypto.PRODUCTION_ARGON2
        ),
        args.argon2_runs,
    )
    argon_receipt = median_seconds(
        lambda: crypto.derive_key(
            b"0123456789012345678901234567", os.urandom(16), 32, RECEIPT_ARGON2
        ),
        args.argon2_runs,
    )

    # Derivations per receipt authentication, counted.
    calls = 0
    original = crypto_params.derive_key

    def counting(*a: object, **kw: object) -> bytes:
        nonlocal calls
        calls += 1
        return original(*a, **kw)  # type: ignore[arg-type]

    crypto_params.derive_key = counting  # type: ignore[assignment]
    try:
        code = crypto.normalize_receipt(crypto.generate_receipt())
        receipts.derive_receipt_secrets(code, os.urandom(32), RECEIPT_ARGON2)
    finally:
        crypto_params.derive_key = original

    private = os.urandom(32)
    public = recipients.public_key_of(private)
    case_key = crypto.new_case_key()
    wrap_aad = crypto.bind_aad("recipient", "case-bench", "user-1")
    wrapped = crypto.wrap_for_recipient(public, case_key, wrap_aad)
    wrap_t = median_seconds(lambda: crypto.wrap_for_recipient(public, case_key, wrap_aad), 501)
    unwrap_t = median_seconds(lambda: crypto.unwrap_for_recipient(private, wrapped, wrap_aad), 501)

    p, r = crypto.PRODUCTION_ARGON2, RECEIPT_ARGON2
    rows = [
        row("raw AESGCM.encrypt, 1 MiB buffer (baseline, best of 4)", f"{raw:,.0f} MiB/s"),
        row("raw SHA-256 + AESGCM.encrypt, 1 MiB buffer (best of 4)", f"{raw_sha_rate:,.0f} MiB/s"),
        row(
            f"stream encrypt update(), {size} MiB (incl. SHA-256 for the trailer)",
            f"{enc_rate:,.0f} MiB/s",
        ),
        check("  ratio to raw AES-GCM", enc_rate / raw, ">=", 0.8),
        check("  ratio to raw SHA-256 + AES-GCM", enc_rate / raw_sha_rate, ">=", 0.8),
        row(
            "stream encrypt update_parts() / encrypt_iter (no join copy)",
            f"{enc_parts_rate:,.0f} MiB/s",
        ),
        check("  ratio to raw AES-GCM", enc_parts_rate / raw, ">=", 0.8),
        check("  ratio to raw SHA-256 + AES-GCM", enc_parts_rate / raw_sha_rate, ">=", 0.8),
        row(f"stream decrypt, {size} MiB (record-aligned input)", f"{dec_rate:,.0f} MiB/s"),
        check("  ratio to raw AES-GCM", dec_rate / raw, ">=", 0.8),
        row(f"stream decrypt, {unaligned_mib} MiB in 64 KiB pieces", f"{dec64_rate:,.0f} MiB/s"),
        info("  ratio to raw AES-GCM", f"{dec64_rate / raw:.2f}"),
        check("peak RSS above baseline", peak_delta, "<=", 64, " MiB", digits=1),
        measured(
            f"Argon2id PRODUCTION_ARGON2, staff passwords ({p.memory_kib // 1024} MiB, "
            f"t={p.iterations}, p={p.lanes}), median of {args.argon2_runs}",
            f"{argon * 1000:.0f} ms",
        ),
        measured(
            f"Argon2id RECEIPT_ARGON2, receipt codes of new installations ({r.memory_kib // 1024}"
            f" MiB, t={r.iterations}, p={r.lanes}), median of {args.argon2_runs}",
            f"{argon_receipt * 1000:.0f} ms",
        ),
        check("derivations per receipt authentication", calls, "=", 1, digits=0),
        info("wrap_for_recipient, median of 501", f"{wrap_t * 1e6:.0f} us"),
        info("unwrap_for_recipient, median of 501", f"{unwrap_t * 1e6:.0f} us"),
    ]
    title = (
        f"crypto bench: {size} MiB stream, CHUNK_SIZE = {stream.CHUNK_SIZE // 1024} KiB, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    table = render(rows)
    print(title)
    print()
    print(table)
    save("crypto.md", f"{title}\n\n{table}\n", args.save)


if __name__ == "__main__":
    main()
