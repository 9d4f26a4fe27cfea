"""Moved to portal.http.errors; kept only while in-flight work still imports this path."""

from portal.http.errors import *  # noqa: F403
