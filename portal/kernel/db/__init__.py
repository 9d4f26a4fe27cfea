"""Database layer: models, engines, migrations."""

from portal.kernel.db.engine import Database
from portal.kernel.db.models import Base

__all__ = ["Base", "Database"]
