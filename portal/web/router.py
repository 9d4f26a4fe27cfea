"""The reporter side's router: every page, and the large-body limit on the upload routes only."""

from __future__ import annotations

from litestar import Router

from portal.kernel.settings import Settings
from portal.web.followup_actions import (
    followup_evidence,
    followup_feedback,
    followup_identity,
    followup_message,
    followup_notify_address,
    followup_retaliation,
    followup_reward_claim,
    followup_signout,
)
from portal.web.privacy_pages import privacy_handlers
from portal.web.reporter import (
    _max_body,
    _signin_again,
    _SignInAgain,
    followup_case,
    followup_signin,
    followup_signin_post,
    landing,
    out_of_scope_help,
    receipt_download,
    report_form,
    report_submit,
)


def reporter_router(settings: Settings) -> Router:

    # only the two streaming routes accept large bodies; every other form stays small
    uploads = Router(
        path="/",
        route_handlers=[report_submit, followup_evidence],
        request_max_body_size=_max_body(settings),
    )
    return Router(
        path="/",
        route_handlers=[
            landing,
            out_of_scope_help,
            report_form,
            receipt_download,
            followup_signin,
            followup_signin_post,
            followup_case,
            followup_message,
            followup_identity,
            followup_feedback,
            followup_retaliation,
            followup_reward_claim,
            followup_notify_address,
            followup_signout,
            *privacy_handlers,
            uploads,
        ],
        exception_handlers={_SignInAgain: _signin_again},
    )
