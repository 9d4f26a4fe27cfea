"""A4 (CSRF on every state change), swept over every route of the whole app.

For every handler that accepts POST/PUT/PATCH/DELETE, with the right person signed in (the
reporter for portal routes, an administrator for workspace routes):

* GET answers 405 (when the path has no GET handler of its own);
* a missing or wrong token is refused 403 - also by the streaming upload routes that read the
  token from the body themselves;
* a request the browser marks cross-site, or with a foreign Origin, is refused 403 even with a
  valid token;
and nothing in the database changed (audit entries of page views aside).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import func, select

from portal.kernel.db.models import Base
from tests.portal.test_reporter_journeys import multipart, run_db
from tests.security.conftest import World

SAFE = {"GET", "HEAD", "OPTIONS"}
_PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")
# Workspace streaming routes look the case up before reading the body and answer a refusal
# as 404 (the same answer as "no such case", so nothing is revealed); see transfer_routes.
WORKSPACE_STREAMING_REFUSALS = {403, 404}


def state_changing(app: Litestar) -> Iterator[tuple[str, str, bool, set[str]]]:
    """(path, method, exempt-from-middleware, methods served on that path)."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in sorted(set(handler.http_methods) - SAFE):
                exempt = bool(handler.opt.get("exclude_from_csrf"))
                yield route.path, method, exempt, set(route.methods)


def concrete(path: str, case_id: str) -> str:
    def fill(match: re.Match[str]) -> str:
        return case_id if match.group(1) == "case_id" else uuid.uuid4().hex

    return _PARAM.sub(fill, path)


def counts(world: World) -> dict[str, int]:
    async def q(s: Any) -> dict[str, int]:
        out: dict[str, int] = {}
        for table in Base.metadata.sorted_tables:
            if table.name in {"audit_log", "audit_entries"}:
                continue
            out[table.name] = int(
                (await s.execute(select(func.count()).select_from(table))).scalar_one()
            )
        return out

    return dict(run_db(world.client, q))


_reporter_tokens: dict[int, str] = {}


def _signed_in_as(world: World, path: str) -> str:
    """Switch the client to the person who may use `path`; return their valid token."""
    if path.startswith("/workspace"):
        world.desk.use("admin")
        return world.desk.tokens["admin"]
    if id(world) not in _reporter_tokens:
        _reporter_tokens[id(world)] = world.reporter_token()
    else:
        world.as_reporter()
    return _reporter_tokens[id(world)]


def _post(world: World, path: str, method: str, token: str | None, **headers: str) -> Any:
    fields: list[tuple[str, Any]] = []
    if token is not None:
        fields.append(("_csrf_token", token))
    fields += [("case_id", world.case_id), ("text", "x")]
    body, hdrs = multipart(fields)
    return world.client.request(
        method, path, content=body, headers={**hdrs, **headers}, follow_redirects=False
    )


def _expect_refused(status: int, path: str, exempt: bool, want: int = 403) -> None:
    if exempt and path.startswith("/workspace"):
        assert status in WORKSPACE_STREAMING_REFUSALS, (path, status)
    else:
        assert status == want, (path, status)


def test_the_sweep_sees_the_whole_app(app: Litestar) -> None:
    routes = list(state_changing(app))
    paths = {p for p, *_ in routes}
    assert {"/report", "/follow-up/evidence", "/follow-up/message", "/lang"} <= paths
    assert any(p.startswith("/workspace/cases/") for p in paths)
    assert sum(1 for *_, exempt, _m in routes if exempt) >= 2
    assert len(routes) > 30, len(routes)


def test_A4_state_changes_refuse_get(world: World) -> None:
    checked = 0
    for path, _method, _exempt, methods in state_changing(world.client.app):
        if "GET" in methods:
            continue
        url = concrete(path, world.case_id)
        _signed_in_as(world, path)
        response = world.client.get(url, follow_redirects=False)
        assert response.status_code == 405, (url, response.status_code)
        checked += 1
    assert checked > 20


def test_A4_every_state_change_refuses_forged_requests(world: World) -> None:
    before = counts(world)
    sweep = [
        (variant, route)
        for variant in ("missing", "wrong", "cross-site", "foreign-origin")
        for route in sorted(state_changing(world.client.app), key=lambda r: r[0][:10])
    ]
    for variant, (path, method, exempt, _methods) in sweep:
        url = concrete(path, world.case_id)
        token = _signed_in_as(world, path)
        if variant == "missing":
            response = _post(world, url, method, None)
        elif variant == "wrong":
            forged = ("0" if token[0] != "0" else "1") + token[1:]
            response = _post(world, url, method, forged)
        elif variant == "cross-site":
            response = _post(world, url, method, token, **{"sec-fetch-site": "cross-site"})
        else:
            response = _post(world, url, method, token, origin="https://attacker.example")
        _expect_refused(response.status_code, path, exempt)
    assert counts(world) == before


def test_A4_reporter_streaming_routes_check_the_token_themselves(world: World) -> None:
    """The two portal upload routes are outside the middleware: with a valid session and a
    missing token, the handler itself answers 403; a file part before any token is refused
    (400) before a byte of it is stored."""
    before = counts(world)
    files_before = sorted(world.client.app.state["settings"].files_dir.rglob("*"))
    for path in ("/report", "/follow-up/evidence"):
        world.reporter_token()
        body, hdrs = multipart([("case_id", world.case_id), ("text", "x")])
        response = world.client.post(path, content=body, headers=hdrs, follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
        body, hdrs = multipart(
            [("evidence", ("a.txt", b"data", "text/plain")), ("_csrf_token", "x")]
        )
        response = world.client.post(path, content=body, headers=hdrs, follow_redirects=False)
        assert response.status_code in (400, 403), (path, response.status_code)
    assert counts(world) == before
    assert sorted(world.client.app.state["settings"].files_dir.rglob("*")) == files_before
