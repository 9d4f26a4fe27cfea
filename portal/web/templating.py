"""Moved to portal.http.templating; kept only while in-flight work still imports this path."""

from portal.http.templating import *  # noqa: F403
