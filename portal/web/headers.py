"""Moved to portal.http.headers; kept only while in-flight work still imports this path."""

from portal.http.headers import *  # noqa: F403
