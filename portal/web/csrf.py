"""Moved to portal.http.csrf; kept only while in-flight work still imports this path."""

from portal.http.csrf import *  # noqa: F403
