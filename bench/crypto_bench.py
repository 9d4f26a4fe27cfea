"""Benchmark of the crypto package (run by hand).

    .venv/bin/python bench/crypto_bench.py [--size-mib N]

Prints a markdown table: metric | value | target | met?
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

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import crypto
from crypto import params as crypto_params
from crypto import receipts, recipients, stream

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

    # One pass over the generated stream, alternating with the baselines in small batches so
    # that noise from other processes hits all measurements alike. Baselines: raw
    # AESGCM.encrypt over a 1 MiB buffer, and raw SHA-256 + AESGCM.encrypt (the stream
    # encryptor must hash the plaintext for the trailer, R11). The stream side times
    # StreamEncryptor.update on each fresh chunk and StreamDecryptor.update on the record just
    # produced; only one chunk and its record are alive at a time.
    raw_aead = AESGCM(os.urandom(32))
    raw_nonce = os.urandom(12)
    raw_sha = hashlib.sha256()
    raw_buf = bytes(block)
    encryptor = crypto.StreamEncryptor(key, aad, header)
    decryptor = crypto.StreamDecryptor(key, aad)
    decryptor.update(encryptor.start())
    raw_s = raw_sha_s = enc_s = dec_s = 0.0
    clock = time.perf_counter
    batch = 8
    for i, chunk in enumerate(plaintext_chunks()):  # type: ignore[attr-defined]
        if i % batch == 0:
            t0 = clock()
            for _ in range(batch):
                raw_aead.encrypt(raw_nonce, raw_buf, b"bench")  # fixed nonce: throughput only
            t1 = clock()
            for _ in range(batch):
                raw_sha.update(raw_buf)
                raw_aead.encrypt(raw_nonce, raw_buf, b"bench")
            t2 = clock()
            raw_s += t1 - t0
            raw_sha_s += t2 - t1
        t0 = clock()
        record = encryptor.update(chunk)
        t1 = clock()
        decryptor.update(record)
        t2 = clock()
        enc_s += t1 - t0
        dec_s += t2 - t1
    raw_mib = batch * ((size + batch - 1) // batch)
    t0 = clock()
    last, trailer = encryptor.finalize()
    t1 = clock()
    decryptor.update(last)
    decryptor.finalize()
    t2 = clock()
    enc_s += t1 - t0
    dec_s += t2 - t1
    raw = raw_mib / raw_s
    raw_sha_rate = raw_mib / raw_sha_s
    enc_rate = size / enc_s
    dec_rate = size / dec_s

    # Decryption of ciphertext arriving in 64 KiB pieces (as read from a socket or a file).
    piece = 64 * 1024
    encryptor = crypto.StreamEncryptor(key, aad, header)
    decryptor = crypto.StreamDecryptor(key, aad)
    decryptor.update(encryptor.start())
    dec64_s = raw64_s = 0.0
    unaligned_mib = min(size, 256)
    carry = b""
    for i in range(unaligned_mib):
        block[:8] = i.to_bytes(8, "big")
        chunk = bytes(block)
        t0 = clock()
        raw_aead.encrypt(raw_nonce, raw_buf, b"bench")
        raw64_s += clock() - t0
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
    dec64_ratio = raw64_s / dec64_s
    dec64_rate = unaligned_mib / dec64_s

    peak_delta = rss_mib() - baseline_rss

    # Argon2id with the shipped parameters.
    argon = median_seconds(
        lambda: crypto.derive_key(b"0123456789012345678901234567", os.urandom(16), 32,
                                  crypto.PRODUCTION_ARGON2),
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
        receipts.derive_receipt_secrets(code, os.urandom(32), crypto.PRODUCTION_ARGON2)
    finally:
        crypto_params.derive_key = original

    private = os.urandom(32)
    public = recipients.public_key_of(private)
    case_key = crypto.new_case_key()
    wrap_aad = crypto.bind_aad("recipient", "case-bench", "user-1")
    wrapped = crypto.wrap_for_recipient(public, case_key, wrap_aad)
    wrap_t = median_seconds(lambda: crypto.wrap_for_recipient(public, case_key, wrap_aad), 501)
    unwrap_t = median_seconds(
        lambda: crypto.unwrap_for_recipient(private, wrapped, wrap_aad), 501
    )

    rows = [
        ("raw AESGCM.encrypt, 1 MiB buffers (baseline)", f"{raw:,.0f} MiB/s", "", ""),
        ("raw SHA-256 + AESGCM.encrypt, 1 MiB buffers", f"{raw_sha_rate:,.0f} MiB/s", "", ""),
        (f"stream encrypt, {size} MiB (incl. SHA-256 for the trailer)",
         f"{enc_rate:,.0f} MiB/s", "", ""),
        ("  ratio to raw AES-GCM", f"{enc_rate / raw:.2f}", ">= 0.8",
         "yes" if enc_rate / raw >= 0.8 else "NO (bound by SHA-256, R11)"),
        ("  ratio to raw SHA-256 + AES-GCM", f"{enc_rate / raw_sha_rate:.2f}", ">= 0.8",
         "yes" if enc_rate / raw_sha_rate >= 0.8 else "no"),
        (f"stream decrypt, {size} MiB (record-aligned input)", f"{dec_rate:,.0f} MiB/s", "", ""),
        ("  ratio to raw AES-GCM", f"{dec_rate / raw:.2f}", ">= 0.8",
         "yes" if dec_rate / raw >= 0.8 else "no"),
        (f"stream decrypt, {unaligned_mib} MiB in 64 KiB pieces", f"{dec64_rate:,.0f} MiB/s",
         "", ""),
        ("  ratio to raw AES-GCM", f"{dec64_ratio:.2f}", "(info)", ""),
        ("peak RSS above baseline", f"{peak_delta:.1f} MiB", "<= 64 MiB",
         "yes" if peak_delta <= 64 else "no"),
        ("Argon2id PRODUCTION_ARGON2 "
         f"({crypto.PRODUCTION_ARGON2.memory_kib // 1024} MiB, "
         f"t={crypto.PRODUCTION_ARGON2.iterations}, p={crypto.PRODUCTION_ARGON2.lanes}), "
         f"median of {args.argon2_runs}", f"{argon * 1000:.0f} ms", "(measured)", ""),
        ("derivations per receipt authentication", f"{calls}", "= 1",
         "yes" if calls == 1 else "no"),
        ("wrap_for_recipient, median of 501", f"{wrap_t * 1e6:.0f} us", "(info)", ""),
        ("unwrap_for_recipient, median of 501", f"{unwrap_t * 1e6:.0f} us", "(info)", ""),
    ]
    print(f"crypto bench: {size} MiB stream, CHUNK_SIZE = {stream.CHUNK_SIZE // 1024} KiB, "
          f"{os.cpu_count()} CPUs, trailer sha256 {trailer.sha256[:16]}...")
    print()
    print("| metric | value | target | met? |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
