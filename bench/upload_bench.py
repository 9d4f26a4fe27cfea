"""Benchmark of one large evidence upload (issue 17, item 3), run by hand.

    .venv/bin/python bench/upload_bench.py [--small] [--upload-mib N] [--runs N]

Starts `portal init` + `portal serve` (development mode, temporary data dir, free loopback
port; see bench/common.py) and a discard server (a Litestar app served by uvicorn with the
portal's options that reads `request.stream()` and drops it), then uploads the same generated
multipart body (one report with one file) to discard, portal, discard, ... and prints one
markdown table (metric | value | target | met?) to stdout:

* server RSS above idle while the body streams in, and over the whole request (which includes
  the receipt's Argon2id derivation: it now runs while the body streams in);
* MiB/s until the last body byte left the client, portal / discard (target >= 0.7);
* MiB/s until the receipt page arrived, portal / discard (target >= 0.6).

Every ratio is between two numbers measured in this run (the discard rate is the mean of the
runs bracketing each portal run). With --save the table is also written to
bench/results/upload.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MIB, PortalServer, ServerProcess, cores, free_port, stop_on_sigterm
from intake_bench import UploadRun, upload
from table import Row, add_save_argument, check, info, render, save

RSS_LIMIT_MIB = 100
STREAM_TARGET = 0.7
RECEIPT_TARGET = 0.6


def progress(msg: str) -> None:
    print(f"[upload bench] {msg}", file=sys.stderr, flush=True)


def measure(mib: int, runs: int) -> tuple[list[UploadRun], list[UploadRun]]:
    """(portal runs, discard runs): discard, portal, discard, portal, ..., discard."""
    env = {
        "PORTAL_MAX_FILE_MB": str(mib + 16),
        "PORTAL_RECEIPT_GLOBAL_PER_MINUTE": "100000",
    }
    server = PortalServer(env, reader=True)
    discard = ServerProcess(
        [sys.executable, str(Path(__file__).with_name("intake_bench.py")), "--discard-server",
         str(port := free_port())],
        port=port,
        env={**os.environ, "TMPDIR": str(server.data_dir)},
    )  # fmt: skip
    size = mib * MIB
    timeout = max(120.0, mib / 5)
    portal_runs: list[UploadRun] = []
    discard_runs: list[UploadRun] = []
    try:
        server.start()
        discard.start()
        # a submission first, so the portal's caches and lazy imports are warm
        upload(server, "/report", MIB, portal_form=True, timeout_s=timeout)
        discard_runs.append(upload(discard, "/discard", size, portal_form=False, timeout_s=timeout))
        for i in range(runs):
            progress(f"portal run {i + 1}/{runs}")
            portal_runs.append(upload(server, "/report", size, portal_form=True, timeout_s=timeout))
            discard_runs.append(
                upload(discard, "/discard", size, portal_form=False, timeout_s=timeout)
            )
    except Exception:
        tail = server.tail()
        if tail:
            print("--- server log (tail) ---\n" + tail, file=sys.stderr)
        raise
    finally:
        discard.stop()
        server.stop()
    return portal_runs, discard_runs


@dataclass(frozen=True)
class Floor:
    """Milliseconds per MiB on one core of this machine, measured now: the work the portal
    must add to the discard server's for every MiB it receives, whatever its design."""

    sha: float  # SHA-256 of the original (its fingerprint)
    aes: float  # AES-256-GCM of the sealed copy
    parse: float  # the multipart parser finding the boundary (python-multipart, 64 KiB reads)
    copy: float  # one copy of each byte (into the batch the threads hash and seal)

    @property
    def total(self) -> float:
        return self.sha + self.aes + self.parse


def one_core_ms_per_mib() -> Floor:
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from python_multipart.multipart import MultipartParser

    data = os.urandom(MIB)
    rounds = 128
    start = time.perf_counter()
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(data)
    sha = (time.perf_counter() - start) * 1000 / rounds
    aead, nonce = AESGCM(os.urandom(32)), os.urandom(12)
    start = time.perf_counter()
    for _ in range(rounds):
        aead.encrypt(nonce, data, b"")
    aes = (time.perf_counter() - start) * 1000 / rounds
    # one file part of `rounds` MiB of random bytes, fed as the server reads it
    boundary = b"bench" + os.urandom(8).hex().encode()
    head = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n'
    chunk = 64 * 1024
    pieces = [data[i : i + chunk] for i in range(0, MIB, chunk)]
    parser = MultipartParser(boundary, {"on_part_data": lambda _d, _s, _e: None})
    parser.write(head)
    start = time.perf_counter()
    for _ in range(rounds):
        for piece in pieces:
            parser.write(piece)
    parse = (time.perf_counter() - start) * 1000 / rounds
    batch = bytearray(4 * MIB)
    start = time.perf_counter()
    for i in range(rounds):
        for piece in pieces:
            at = (i % 4) * MIB
            batch[at : at + len(piece)] = piece
    copy = (time.perf_counter() - start) * 1000 / rounds
    return Floor(sha, aes, parse, copy)


def ceiling_rows(
    mib: int, portal_runs: list[UploadRun], discard_runs: list[UploadRun], floor: Floor
) -> list[Row]:
    """What this machine allows: the discard run's client and server CPU per MiB, plus the
    work every MiB needs (``Floor``: SHA-256, AES-GCM, the multipart boundary search), spread
    perfectly over its cores (and never faster than the discard run itself, nor than one core
    hashing); and the same with one copy of each byte."""
    n = cores()
    client = statistics.mean(r.client_cpu_s for r in discard_runs) * 1000 / mib
    server = statistics.mean(r.server_cpu_s for r in discard_runs) * 1000 / mib
    portal = statistics.mean(r.server_cpu_s for r in portal_runs) * 1000 / mib
    wall = statistics.mean(r.seconds_total for r in discard_runs) * 1000 / mib
    best = max(wall, (client + server + floor.total) / n, floor.sha)
    with_copy = max(wall, (client + server + floor.total + floor.copy) / n, floor.sha)
    return [
        info(
            "   CPU ms per MiB: bench client / discard server / portal server; one core: "
            "SHA-256 / AES-GCM / multipart boundary search / one copy",
            f"{client:.2f} / {server:.2f} / {portal:.2f}; {floor.sha:.2f} / {floor.aes:.2f} / "
            f"{floor.parse:.2f} / {floor.copy:.2f}",
        ),
        info(
            f"   best ratio this machine allows ({n} cores shared by client and server, "
            "perfect parallelism): no copy / one copy",
            f"{wall / best:.2f} / {wall / with_copy:.2f}",
        ),
    ]


def rows_for(mib: int, portal_runs: list[UploadRun], discard_runs: list[UploadRun]) -> list[Row]:
    rows: list[Row] = []
    stream_ratios: list[float] = []
    receipt_ratios: list[float] = []
    over_sent: list[float] = []
    over_total: list[float] = []
    for i, run in enumerate(portal_runs):
        base = statistics.mean(
            mib / r.seconds_total for r in (discard_runs[i], discard_runs[i + 1])
        )
        stream_ratios.append(mib / run.seconds_sent / base)
        receipt_ratios.append(mib / run.seconds_total / base)
        over_sent.append((run.peak_sent_kib - run.idle_kib) / 1024)
        over_total.append((max(run.peak_total_kib, run.hwm_kib) - run.idle_kib) / 1024)
        rows.append(
            info(
                f"   run {i + 1}: discard / portal streamed / portal to the receipt page "
                f"({run.seconds_total - run.seconds_sent:.2f} s after the last byte)",
                f"{base:.0f} / {mib / run.seconds_sent:.0f} / {mib / run.seconds_total:.0f} MiB/s",
            )
        )
    stream = statistics.median(stream_ratios)
    receipt = statistics.median(receipt_ratios)
    worst_sent, worst_total = max(over_sent), max(over_total)
    return [
        check(
            f"3. {mib:,} MiB upload: server RSS above idle while the body streams (max of "
            f"{len(portal_runs)})",
            worst_sent, "<=", RSS_LIMIT_MIB, " MiB", 1,
        ),
        check(
            "   server RSS above idle, whole request incl. the receipt derivation (max of "
            "sampled RSS and VmHWM)",
            worst_total, "<=", RSS_LIMIT_MIB, " MiB", 1,
        ),
        *rows,
        check("  ratio portal / discard, body streamed in (median)", stream, ">=", STREAM_TARGET),
        check(
            "  ratio portal / discard, until the receipt page (median)",
            receipt, ">=", RECEIPT_TARGET,
        ),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="128 MiB, 2 runs")
    parser.add_argument("--upload-mib", type=int, help="upload size (1024; --small 128)")
    parser.add_argument("--runs", type=int, help="portal runs, each bracketed (3; --small 2)")
    add_save_argument(parser)
    args = parser.parse_args()
    stop_on_sigterm()
    mib = args.upload_mib or (128 if args.small else 1024)
    runs = max(1, args.runs or (2 if args.small else 3))
    portal_runs, discard_runs = measure(mib, runs)
    header = (
        f"upload bench{' --small' if args.small else ''}: {cores()} CPUs, "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, one report with one {mib:,} MiB file, "
        "portal in development mode, SQLite, local file store"
    )
    floor = one_core_ms_per_mib()
    rows = rows_for(mib, portal_runs, discard_runs)
    table = render(rows + ceiling_rows(mib, portal_runs, discard_runs, floor))
    print(header)
    print()
    print(table)
    save("upload.md", f"{header}\n\n{table}\n", args.save)


if __name__ == "__main__":
    main()
