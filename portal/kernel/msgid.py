"""The msgid marker ``_``: marks a string for Babel extraction and returns it unchanged.

Framework-free and dependency-free, so domain modules and web modules alike can import it::

    from portal.kernel.msgid import _

    CLOSED_CASE = _("This case is not under investigation.")

``python -m portal.kernel.i18n update`` extracts every ``_("...")`` call (Babel's default keywords);
the caller's ``gettext`` (a template's ``_``) translates the string when it is shown.
"""

from __future__ import annotations

__all__ = ["_"]


def _(message: str) -> str:
    """Marks a msgid for extraction; the caller's ``gettext`` translates it."""
    return message
