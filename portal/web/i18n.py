"""Moved to portal.http.i18n; kept only while in-flight work still imports this path."""

from portal.http.i18n import *  # noqa: F403
