"""Departments and report categories (administrators: ``manage_settings``).

    GET  /workspace/directory                        both lists, with their forms
    POST /workspace/directory/departments            add a department
    POST /workspace/directory/departments/{id}       rename it, or switch it on or off
    POST /workspace/directory/categories             add a category (code and three names)
    POST /workspace/directory/categories/{code}      rename it, change its scope, switch it

Refusals answer 404 like every workspace refusal; a change that cannot be made answers 400 on
the same page with the reason, and the form keeps what was typed. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.domain import directory
from investigator.domain.directory import DirectoryError
from investigator.web.case_common import (
    checked,
    confirmed,
    field,
    not_found,
    page,
    read_form,
    services_of,
    staff_who_can,
)
from investigator.web.guards import StaffPrincipal

PATH = "/workspace/directory"


async def _admin(request: Request[Any, Any, Any]) -> StaffPrincipal:
    return await staff_who_can(request, "manage_settings")


async def _page(request: Request[Any, Any, Any], *, status: int = 200, **extra: Any) -> Template:
    staff = await _admin(request)
    async with services_of(request).db.read() as s:
        departments = await directory.departments(s)
        categories = await directory.categories(s)
    context: dict[str, Any] = {"form": {}, "error": "", "error_for": "", **extra}
    return page(
        "directory",
        status=status,
        staff=staff,
        departments=departments,
        categories=categories,
        **context,
    )


def _switch(form: dict[str, list[str]]) -> bool | None:
    value = field(form, "active")
    return {"on": True, "off": False}.get(value)


# the change a form asks for: (session, acting user id, form); LookupError: no such row
Change = Callable[[AsyncSession, str, dict[str, list[str]]], Awaitable[object]]


async def _post(
    request: Request[Any, Any, Any], error_for: str, change: Change
) -> Template | Redirect:
    """Policy, the form, the change in one transaction; the page again with the reason (400)
    when it cannot be made, 404 for a row that does not exist."""
    staff = await _admin(request)
    form = await read_form(request)
    try:
        async with services_of(request).db.write() as s:
            await change(s, staff.user_id, form)
    except LookupError:
        raise not_found() from None
    except DirectoryError as exc:
        return await _page(request, status=400, form=form, error=str(exc), error_for=error_for)
    return confirmed(Redirect(path=PATH, status_code=303))


def _names(form: dict[str, list[str]]) -> directory.CategoryNames:
    return directory.category_names(
        field(form, "name_zh_cn", 400), field(form, "name_zh_tw", 400), field(form, "name_en", 400)
    )


@get("/directory", name="workspace_directory")
async def directory_view(request: Request[Any, Any, Any]) -> Template:
    await _admin(request)
    return await _page(request)


@post("/directory/departments", name="workspace_directory_department_add")
async def department_add(request: Request[Any, Any, Any]) -> Template | Redirect:
    async def change(s: AsyncSession, actor: str, form: dict[str, list[str]]) -> object:
        return await directory.add_department(s, field(form, "name", 400), actor_user_id=actor)

    return await _post(request, "department", change)


@post("/directory/departments/{department_id:str}", name="workspace_directory_department")
async def department_change(
    request: Request[Any, Any, Any], department_id: FromPath[str]
) -> Template | Redirect:
    async def change(s: AsyncSession, actor: str, form: dict[str, list[str]]) -> object:
        return await directory.change_department(
            s,
            department_id,
            raw_name=field(form, "name", 400) if "name" in form else None,
            active=_switch(form),
            actor_user_id=actor,
        )

    return await _post(request, "department", change)


@post("/directory/categories", name="workspace_directory_category_add")
async def category_add(request: Request[Any, Any, Any]) -> Template | Redirect:
    async def change(s: AsyncSession, actor: str, form: dict[str, list[str]]) -> object:
        return await directory.add_category(
            s,
            field(form, "code", 40),
            _names(form),
            in_scope=checked(form, "in_scope"),
            actor_user_id=actor,
        )

    return await _post(request, "category", change)


@post("/directory/categories/{code:str}", name="workspace_directory_category")
async def category_change(
    request: Request[Any, Any, Any], code: FromPath[str]
) -> Template | Redirect:
    async def change(s: AsyncSession, actor: str, form: dict[str, list[str]]) -> object:
        return await directory.change_category(
            s,
            code,
            names=_names(form) if "name_en" in form else None,
            in_scope=checked(form, "in_scope") if "scope" in form else None,
            active=_switch(form),
            actor_user_id=actor,
        )

    return await _post(request, "category", change)


directory_handlers: list[Any] = [
    directory_view,
    department_add,
    department_change,
    category_add,
    category_change,
]
