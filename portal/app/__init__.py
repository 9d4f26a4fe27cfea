"""The composition root: the application factory, the command line and the operations they
run (checks, backup and restore, moving data). The only package that knows every layer."""

from portal.app.factory import create_app

__all__ = ["create_app"]
