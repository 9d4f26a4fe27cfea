"""A bounded load run on loopback: many reporters and some staff at once, zero errors allowed.

    .venv/bin/python bench/load_bench.py            # 200 reporters for 60 s, 20 staff
    .venv/bin/python bench/load_bench.py --small    # 20 reporters for 10 s, 20 staff

`portal serve` (SQLite, local file store, production Argon2id) runs in a subprocess. Each
simulated reporter, in its own cookie jar, loops until the time is up: a first report (one in
three with a small evidence file), then either a follow-up (sign in with its receipt code, read
the case, send a message) or another report. Each staff member is created with a password,
enrols TOTP (pyotp), signs out, signs in again with password + TOTP, then browses the inbox,
the case list and case pages. The run fails (exit 1) on any error (an unexpected status, a
timeout, a refused form) and on any lost report: after the load, every receipt code the portal
returned must still sign in. Figures are printed as one table (bench/table.py); with --save it
is also written to bench/results/load.md.

The receipt sign-in budget (R8's global slow-down, 120/min by default) is raised for the run:
this measures capacity, not the throttle, which would otherwise answer "busy" by design.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import pyotp
from common import PortalServer, hidden_field, percentile, receipt_code
from intake_bench import FileSpec, report_body
from table import add_save_argument, check, render, row, save

STAFF_PASSWORD = "quiet meadow parcel 2026 ferry"  # no part of the display name (A4)
_SECRET = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
_CASE_LINK = re.compile(r'href="/workspace/cases/([0-9a-f]{32})"')
_CASE_ID = re.compile(r'name="case_id" value="([0-9a-f]+)"')
TIMEOUT = httpx.Timeout(300.0)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)

    def timed(self, kind: str, started: float) -> None:
        self.latencies[kind].append(time.perf_counter() - started)

    def error(self, what: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(what)
        else:
            self.errors.append("...")


class FlowError(RuntimeError):
    pass


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        raise FlowError(f"{what}: HTTP {response.status_code}")
    return response


# --- reporters ------------------------------------------------------------------------------


async def submit(client: httpx.AsyncClient, stats: Stats, with_file: bool) -> str:
    page = _expect(await client.get("/report/new"), 200, "report form")
    spec = FileSpec("evidence", "evidence.txt", 64 * 1024, "text/plain") if with_file else None
    ctype, length, body = report_body(
        hidden_field(page.text, "_csrf_token"), hidden_field(page.text, "submission_token"), spec
    )
    started = time.perf_counter()
    answer = await client.post(
        "/report",
        content=b"".join(body),
        headers={"Content-Type": ctype, "Content-Length": str(length)},
    )
    stats.timed("submit report" + (" + file" if with_file else ""), started)
    code = receipt_code(_expect(answer, 200, "submit").text)
    if code is None:
        raise FlowError("submit: no receipt code on the page")
    stats.codes.append(code)
    return code


async def sign_in(client: httpx.AsyncClient, stats: Stats, code: str) -> None:
    client.cookies.clear()
    page = _expect(await client.get("/follow-up"), 200, "sign-in page")
    form = {
        "_csrf_token": hidden_field(page.text, "_csrf_token"),
        "attempts": hidden_field(page.text, "attempts"),
        "code": code,
    }
    started = time.perf_counter()
    answer = await client.post("/follow-up", data=form)
    stats.timed("receipt sign-in", started)
    if answer.status_code != 303 or answer.headers.get("location") != "/follow-up/case":
        raise FlowError(f"receipt sign-in: HTTP {answer.status_code}")


async def follow_up(client: httpx.AsyncClient, stats: Stats, code: str) -> None:
    await sign_in(client, stats, code)
    started = time.perf_counter()
    page = _expect(await client.get("/follow-up/case"), 200, "follow-up page")
    stats.timed("follow-up page", started)
    case_id = _CASE_ID.search(page.text)
    if case_id is None:
        raise FlowError("follow-up page: no case")
    started = time.perf_counter()
    sent = await client.post(
        "/follow-up/message",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "case_id": case_id.group(1),
            "text": "A load-test follow-up message with one more detail.",
        },
    )
    stats.timed("follow-up message", started)
    _expect(sent, 303, "message")


async def reporter(base: str, stats: Stats, deadline: float, rng: random.Random) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
        await asyncio.sleep(rng.uniform(0, 2))  # arrivals spread over the first seconds
        code: str | None = None
        while time.monotonic() < deadline:
            try:
                if code is None or rng.random() < 0.3:
                    code = await submit(client, stats, with_file=rng.random() < 1 / 3)
                else:
                    await follow_up(client, stats, code)
            except (httpx.HTTPError, FlowError, LookupError) as exc:
                stats.error(f"reporter: {type(exc).__name__}: {exc}")
            await asyncio.sleep(rng.uniform(0.5, 2.0))  # think time


# --- staff ----------------------------------------------------------------------------------


async def create_staff(database_path: Path, n: int) -> list[str]:
    from sqlalchemy import update

    from crypto.keyring import load_keyring
    from crypto.params import PRODUCTION_ARGON2
    from investigator.domain.staff import add_user
    from portal.kernel.db.engine import Database
    from portal.kernel.db.models import User

    db = Database(f"sqlite+aiosqlite:///{database_path.as_posix()}")
    # the server's keyring (PORTAL_DATA_DIR/secrets): account passwords depend on its pepper
    pepper = load_keyring(database_path.parent / "secrets").password_pepper
    names = []
    try:
        for i in range(n):
            name = f"loadstaff{i:02d}"
            new = await add_user(
                db,
                PRODUCTION_ARGON2,
                pepper=pepper,
                username=name,
                display_name=f"Load Staff {i}",
                roles="intake_officer",
                password=STAFF_PASSWORD,
            )
            async with db.write() as s:
                await s.execute(
                    update(User).where(User.id == new.user.id).values(must_change_password=False)
                )
            names.append(name)
    finally:
        await db.dispose()
    return names


async def _password_step(client: httpx.AsyncClient, stats: Stats, name: str) -> str:
    page = _expect(await client.get("/workspace/"), 200, "staff sign-in page")
    started = time.perf_counter()
    answer = await client.post(
        "/workspace/signin",
        data={
            "_csrf_token": hidden_field(page.text, "_csrf_token"),
            "username": name,
            "password": STAFF_PASSWORD,
        },
    )
    stats.timed("staff password step", started)
    return str(_expect(answer, 303, "password step").headers["location"])


async def staff_sign_in(base: str, name: str, stats: Stats) -> httpx.AsyncClient | None:
    """Enrol TOTP, sign out, sign in with password + TOTP; the signed-in client, or None."""
    client = httpx.AsyncClient(base_url=base, timeout=TIMEOUT)
    try:
        if await _password_step(client, stats, name) != "/workspace/totp/enrol":
            raise FlowError("staff: enrolment expected")
        page = _expect(await client.get("/workspace/totp/enrol"), 200, "enrol page")
        match = _SECRET.search(page.text)
        if match is None:
            raise FlowError("staff: no TOTP secret on the enrolment page")
        totp = pyotp.TOTP(match.group(1).replace(" ", ""))
        enrolled = await client.post(
            "/workspace/totp/enrol",
            data={"_csrf_token": hidden_field(page.text, "_csrf_token"), "code": totp.now()},
        )
        _expect(enrolled, 303, "enrol")
        home = _expect(await client.get("/workspace/"), 200, "home")
        await client.post(
            "/workspace/signout", data={"_csrf_token": hidden_field(home.text, "_csrf_token")}
        )
        # password + TOTP, with the next step's code (the current one is spent)
        if await _password_step(client, stats, name) != "/workspace/totp":
            raise FlowError("staff: TOTP step expected")
        page = _expect(await client.get("/workspace/totp"), 200, "totp page")
        started = time.perf_counter()
        answer = await client.post(
            "/workspace/totp",
            data={
                "_csrf_token": hidden_field(page.text, "_csrf_token"),
                "code": totp.at(time.time() + 30),
            },
        )
        stats.timed("staff TOTP step", started)
        if answer.headers.get("location") != "/workspace/":
            raise FlowError(f"staff TOTP step: HTTP {answer.status_code}")
    except (httpx.HTTPError, FlowError, LookupError) as exc:
        stats.error(f"staff sign-in: {type(exc).__name__}: {exc}")
        await client.aclose()
        return None
    return client


async def staff_browse(
    client: httpx.AsyncClient, stats: Stats, deadline: float, rng: random.Random
) -> None:
    try:
        while time.monotonic() < deadline:
            try:
                for path in ("/workspace/inbox", "/workspace/cases"):
                    started = time.perf_counter()
                    listing = _expect(await client.get(path), 200, path)
                    stats.timed("staff list page", started)
                ids = _CASE_LINK.findall(listing.text)
                if ids:
                    started = time.perf_counter()
                    case = await client.get(f"/workspace/cases/{rng.choice(ids)}")
                    stats.timed("staff case page", started)
                    _expect(case, 200, "case page")
            except (httpx.HTTPError, FlowError) as exc:
                stats.error(f"staff browsing: {type(exc).__name__}: {exc}")
            await asyncio.sleep(rng.uniform(1.0, 3.0))
    finally:
        await client.aclose()


# --- the run --------------------------------------------------------------------------------


async def verify_codes(base: str, codes: list[str], stats: Stats) -> int:
    """Every code the portal returned signs in after the load (R6: nothing lost)."""
    lost = 0
    gate = asyncio.Semaphore(8)

    async def one(code: str) -> None:
        nonlocal lost
        async with gate, httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as client:
            try:
                await sign_in(client, Stats(), code)
            except (httpx.HTTPError, FlowError, LookupError):
                lost += 1

    await asyncio.gather(*(one(c) for c in codes))
    return lost


async def run(reporters: int, staff: int, seconds: int, save_results: bool = False) -> int:
    server = PortalServer(extra_env={"PORTAL_RECEIPT_GLOBAL_PER_MINUTE": "100000"})
    server.start()
    try:
        names = await create_staff(server.database_path, staff)
        stats = Stats()
        rng = random.Random(2026)
        # staff sign in first (timed), then browse while the reporters come
        signin_started = time.monotonic()
        signed = await asyncio.gather(*(staff_sign_in(server.base_url, n, stats) for n in names))
        staff_signin_s = time.monotonic() - signin_started
        clients = [c for c in signed if c is not None]
        started = time.monotonic()
        deadline = started + seconds
        tasks = [
            reporter(server.base_url, stats, deadline, random.Random(rng.random()))
            for _ in range(reporters)
        ]
        tasks += [staff_browse(c, stats, deadline, random.Random(rng.random())) for c in clients]
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        codes = list(stats.codes)
        lost = await verify_codes(server.base_url, codes, stats)
    finally:
        server.stop()

    rows = [
        row("simulated reporters / staff", f"{reporters} / {staff}"),
        row(
            "staff sign-ins (enrol, sign out, password + TOTP), all at once (s)",
            f"{staff_signin_s:.1f}",
        ),
        row("load duration (s, incl. the last requests)", f"{elapsed:.1f}"),
        check("errors", len(stats.errors), "=", 0, digits=0),
        row("receipt codes returned", str(len(codes))),
        check("codes that no longer sign in (lost)", lost, "=", 0, digits=0),
    ]
    total = sum(len(v) for v in stats.latencies.values())
    rows.append(row("timed requests", f"{total} ({total / elapsed:.1f}/s)"))
    for kind in sorted(stats.latencies):
        values = stats.latencies[kind]
        rows.append(
            row(
                f"{kind}: n, p50 / p95 / p99 (ms)",
                f"{len(values)}, {percentile(values, 50) * 1000:.0f} / "
                f"{percentile(values, 95) * 1000:.0f} / {percentile(values, 99) * 1000:.0f}",
            )
        )
    table = render(rows)
    print(table)
    save("load.md", table, save_results)
    for error in stats.errors[:20]:
        print(f"error: {error}", file=sys.stderr)
    return 0 if not stats.errors and lost == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", action="store_true", help="20 reporters for 10 s")
    parser.add_argument("--reporters", type=int)
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--seconds", type=int)
    add_save_argument(parser)
    args = parser.parse_args()
    reporters = args.reporters or (20 if args.small else 200)
    seconds = args.seconds or (10 if args.small else 60)
    sys.exit(asyncio.run(run(reporters, args.staff, seconds, args.save)))


if __name__ == "__main__":
    main()
