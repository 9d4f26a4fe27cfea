"""Database layer: models, engines, migrations."""

from portal.db.engine import Database
from portal.db.models import Base

__all__ = ["Base", "Database"]
