"""The installation's own lists: departments and report categories (framework-free).

Administrators keep them (policy action ``manage_settings``). Nothing is ever deleted: cases,
statistics and staff accounts refer to these rows, so a department or category that is no
longer used is switched off (``active``): it leaves the reporter's form and the triage choices,
and stays in old cases and in the statistics. Every change is audited (metadata only).

A category's ``in_scope`` says whether it is a matter for the centre at all (举报受理范围); the
reporter's form lists the active ones in ``position`` order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel import audit
from portal.kernel.db.models import Category, Department
from portal.kernel.msgid import _
from portal.kernel.text import clean_text

NAME_LIMIT = 200
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


class DirectoryError(ValueError):
    """A change that cannot be made; the message (a msgid) is shown to the administrator."""


@dataclass(frozen=True)
class CategoryNames:
    zh_cn: str
    zh_tw: str
    en: str


NAME_NEEDED = _("Every name is needed (a category needs one in each of the three languages).")
NAME_TOO_LONG = _("A name is limited to 200 characters.")
DEPARTMENT_EXISTS = _("A department of that name exists already.")
CATEGORY_EXISTS = _("A category with that code exists already.")
BAD_CODE = _(
    "The code must be 2 to 40 characters: lower-case letters, digits and _ "
    "(starting with a letter)."
)


def _name(raw: str) -> str:
    name = clean_text(raw, NAME_LIMIT + 1)
    if not name:
        raise DirectoryError(NAME_NEEDED)
    if len(name) > NAME_LIMIT:
        raise DirectoryError(NAME_TOO_LONG)
    return name


# --- departments ------------------------------------------------------------------------------


async def departments(s: AsyncSession) -> list[Department]:
    return list((await s.execute(select(Department).order_by(Department.name))).scalars())


async def _department_named(s: AsyncSession, name: str) -> Department | None:
    return (await s.execute(select(Department).where(Department.name == name))).scalar_one_or_none()


async def add_department(s: AsyncSession, raw_name: str, *, actor_user_id: str) -> Department:
    name = _name(raw_name)
    if await _department_named(s, name) is not None:
        raise DirectoryError(DEPARTMENT_EXISTS)
    dept = Department(name=name, active=True)
    s.add(dept)
    await s.flush()
    await audit.record(
        s, actor_user_id=actor_user_id, action="department.add", detail=f"department={dept.id}"
    )
    return dept


async def change_department(
    s: AsyncSession,
    department_id: str,
    *,
    raw_name: str | None,
    active: bool | None,
    actor_user_id: str,
) -> Department:
    """Rename and/or switch on or off; LookupError when there is no such department."""
    dept = await s.get(Department, department_id)
    if dept is None:
        raise LookupError(department_id)
    if raw_name is not None:
        name = _name(raw_name)
        other = await _department_named(s, name)
        if other is not None and other.id != dept.id:
            raise DirectoryError(DEPARTMENT_EXISTS)
        if name != dept.name:
            dept.name = name
            await audit.record(
                s,
                actor_user_id=actor_user_id,
                action="department.rename",
                detail=f"department={dept.id}",
            )
    if active is not None and active != dept.active:
        dept.active = active
        await audit.record(
            s,
            actor_user_id=actor_user_id,
            action="department.enable" if active else "department.disable",
            detail=f"department={dept.id}",
        )
    return dept


# --- categories -------------------------------------------------------------------------------


async def categories(s: AsyncSession) -> list[Category]:
    return list(
        (await s.execute(select(Category).order_by(Category.position, Category.code))).scalars()
    )


def category_names(zh_cn: str, zh_tw: str, en: str) -> CategoryNames:
    """All three names are needed: the reporter's form is served in all three languages."""
    return CategoryNames(
        zh_cn=_name(zh_cn),
        zh_tw=_name(zh_tw),
        en=_name(en),
    )


async def add_category(
    s: AsyncSession,
    raw_code: str,
    names: CategoryNames,
    *,
    in_scope: bool,
    actor_user_id: str,
) -> Category:
    code = raw_code.strip().lower()
    if not _CODE.fullmatch(code):
        raise DirectoryError(BAD_CODE)
    if await s.get(Category, code) is not None:
        raise DirectoryError(CATEGORY_EXISTS)
    last = (await s.execute(select(func.max(Category.position)))).scalar_one_or_none() or 0
    category = Category(
        code=code,
        name_zh_cn=names.zh_cn,
        name_zh_tw=names.zh_tw,
        name_en=names.en,
        in_scope=in_scope,
        active=True,
        position=int(last) + 10,
    )
    s.add(category)
    await s.flush()
    await audit.record(
        s, actor_user_id=actor_user_id, action="category.add", detail=f"category={code}"
    )
    return category


async def change_category(
    s: AsyncSession,
    code: str,
    *,
    names: CategoryNames | None,
    in_scope: bool | None,
    active: bool | None,
    actor_user_id: str,
) -> Category:
    """Rename, change the scope and/or switch on or off; LookupError when there is none."""
    category = await s.get(Category, code)
    if category is None:
        raise LookupError(code)
    changed: list[str] = []
    if names is not None and (category.name_zh_cn, category.name_zh_tw, category.name_en) != (
        names.zh_cn,
        names.zh_tw,
        names.en,
    ):
        category.name_zh_cn, category.name_zh_tw, category.name_en = (
            names.zh_cn,
            names.zh_tw,
            names.en,
        )
        changed.append("names")
    if in_scope is not None and in_scope != category.in_scope:
        category.in_scope = in_scope
        changed.append("in_scope")
    if active is not None and active != category.active:
        category.active = active
        changed.append("active" if active else "inactive")
    if changed:
        await audit.record(
            s,
            actor_user_id=actor_user_id,
            action="category.change",
            detail=f"category={code} changed={','.join(changed)}",
        )
    return category
