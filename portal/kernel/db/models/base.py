"""The declarative base of every table, and the id and time helpers."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import DeclarativeBase


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass
