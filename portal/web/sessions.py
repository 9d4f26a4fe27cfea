"""Moved to portal.http.sessions; kept only while in-flight work still imports this path."""

from portal.http.sessions import *  # noqa: F403
