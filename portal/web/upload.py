"""Moved to portal.http.upload; kept only while in-flight work still imports this path."""

from portal.http.upload import *  # noqa: F403
