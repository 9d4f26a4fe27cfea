"""Workspace routes, mounted under /workspace."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException

from investigator.domain.auth import StaffAuth
from investigator.web.admin_routes import admin_handlers
from investigator.web.archive_routes import archive_handlers
from investigator.web.auth_routes import auth_handlers
from investigator.web.case_routes import case_handlers
from investigator.web.deadline_routes import deadline_handlers
from investigator.web.directory_routes import directory_handlers
from investigator.web.export_routes import export_handlers
from investigator.web.guards import (
    provide_services,
    provide_staff,
    redirect_to_signin,
    staff_guard,
)
from investigator.web.handling_routes import handling_handlers
from investigator.web.metrics_routes import metrics_handlers
from investigator.web.notice_routes import notice_handlers
from investigator.web.notify_routes import notify_handlers
from investigator.web.privacy_routes import privacy_handlers
from investigator.web.protection_routes import protection_handlers
from investigator.web.reward_routes import reward_handlers
from investigator.web.rights_routes import rights_handlers
from investigator.web.statistics_routes import statistics_handlers
from investigator.web.waiting_routes import waiting_handlers
from portal.kernel.redis_state import signin_throttle
from portal.kernel.services import argon2_params
from portal.kernel.settings import Settings


def workspace_router(settings: Settings) -> Router:
    """Built once per app: the sign-in logic (and its start-up dummy hash) lives here."""
    auth = StaffAuth(argon2_params(settings), throttle=signin_throttle(settings))
    return Router(
        path="/workspace",
        route_handlers=[
            *auth_handlers(auth),
            *case_handlers,
            *waiting_handlers,
            *handling_handlers,
            *deadline_handlers,
            *reward_handlers,
            *protection_handlers,
            *archive_handlers,
            *notify_handlers,
            *notice_handlers,
            *export_handlers,
            *statistics_handlers,
            *admin_handlers,
            *directory_handlers,
            *metrics_handlers,
            *privacy_handlers,
            *rights_handlers,
        ],
        guards=[staff_guard],
        dependencies={
            "staff": Provide(provide_staff),
            "services": Provide(provide_services, sync_to_thread=False),
        },
        exception_handlers={NotAuthorizedException: redirect_to_signin},
    )
