"""Words for the internal codes: one table per kind of code, msgids only (the caller translates).

No code is ever shown as text (roles, channels, kinds, severities, stages, timeline events,
outcomes, audit actions, notice kinds ...): pages show ``{{ code | label("stage") }}``, the
template filter of ``portal.http.templating`` that looks the code up here and translates it.
Categories are the administrator's own names (``investigator.domain.directory``), never a msgid:
pages show them with the ``category_label`` filter.

A code missing from its table is shown as ``UNKNOWN`` (a translated "Other"), never as itself;
``tests/investigator/test_labels.py`` checks that every code the code base defines has a word.
Framework-free and dependency-free, like ``portal.kernel.msgid``.
"""

from __future__ import annotations

from portal.kernel.msgid import _

__all__ = ["GROUPS", "UNKNOWN", "audit_action_msgid", "event_msgid", "msgid_for"]

UNKNOWN = _("Other")

ROLES = {
    "administrator": _("Administrator"),
    "intake_officer": _("Intake officer"),
    "investigator": _("Investigator"),
    "team_lead": _("Team lead"),
    "approver": _("Approver"),
    "identity_custodian": _("Identity custodian"),
    "reward_officer": _("Reward officer"),
    "department_liaison": _("Department liaison"),
    "auditor": _("Auditor"),
    "independent_reviewer": _("Independent reviewer (audit committee or supervisory board)"),
}
CHANNELS = {
    "web": _("Web form"),
    "phone": _("Phone"),
    "wechat": _("WeChat"),
    "official_account": _("Official account (公众号)"),
    "email": _("E-mail"),
    "letter": _("Letter"),
    "visit": _("Visit"),
}
KINDS = {
    "report": _("Report (举报)"),
    "complaint": _("Complaint (投诉)"),
    "both": _("Report and complaint"),
}
RELATIONS = {
    "employee": _("Employee"),
    "supplier": _("Supplier"),
    "partner": _("Partner"),
    "customer": _("Customer"),
    "other": _("Other"),
}
IDENTITY_MODES = {"real_name": _("Real name"), "anonymous": _("Anonymous")}
SEVERITIES = {
    "low": _("Low"),
    "medium": _("Medium"),
    "high": _("High"),
    "critical": _("Critical"),
}
RISKS = {"low": _("Low"), "medium": _("Medium"), "high": _("High")}
STAGES = {
    "received": _("Received"),
    "triage": _("Triage"),
    "accepted": _("Accepted"),
    "investigating": _("Investigating"),
    "handling": _("Handling"),
    "approval": _("Approval"),
    "implementing": _("Implementing"),
    "concluded": _("Concluded"),
    "rejected": _("Rejected"),
    "transferred": _("Transferred"),
    "reopened": _("Reopened"),
    "archived": _("Archived"),
}
OUTCOMES = {
    "substantiated": _("Substantiated"),
    "partly_substantiated": _("Partly substantiated"),
    "unsubstantiated": _("Unsubstantiated"),
}
FUNCTIONS = {
    "lead": _("Lead"),
    "member": _("Member"),
    "department_head": _("Department head"),
    "expert": _("Technical expert"),
    "legal": _("Legal"),
}
REWARD_STATUSES = {
    "proposed": _("Proposed"),
    "approved": _("Approved"),
    "refused": _("Refused"),
    "paid": _("Paid"),
}
DEADLINE_STAGES = {
    "initial_review": _("Initial review"),
    "transfer": _("Transfer to the responsible department"),
    "urgent_dispatch": _("Urgent dispatch"),
    "investigation": _("Investigation"),
    "handling": _("Handling"),
    "rehandling": _("Re-handling"),
    "feedback": _("Feedback to the reporter"),
    "acknowledgement": _("Acknowledgement of receipt"),
    "eu_feedback": _("Feedback to the reporter (three months)"),
}
PAUSE_REASONS = {
    "awaiting_reporter": _("Awaiting the reporter"),
    "external_appraisal": _("External appraisal"),
}
# what a workspace notice is about (investigator.domain.notify KINDS and URGENT)
NOTICE_KINDS = {
    "new_cases": _("New reports"),
    "assigned": _("Added to a team"),
    "reporter_message": _("Message from a reporter"),
    "deadline": _("Deadline warning"),
    "approval": _("Waiting for approval"),
    "identity_request": _("Identity disclosure request"),
    "rights_request": _("Withdrawal request from a reporter"),
    "urgent": _("Urgent case"),
}
FILE_KINDS = {
    "original": _("Original file"),
    "working": _("working copy, metadata removed"),
    "redacted": _("Redacted copy"),
}
# case timeline events (CaseEvent.kind); "rejected:<reason>" and "concluded:<outcome>" are
# looked up by their first part (see ``event_msgid``)
EVENTS = {
    "received": _("Report received"),
    "triage_started": _("Initial review started"),
    "classified": _("Classified"),
    "split": _("Split into two linked cases"),
    "accepted": _("Accepted (受理)"),
    "rejected": _("Not accepted (不予受理)"),
    "investigation_started": _("Investigation team formed"),
    "team_changed": _("Investigation team changed"),
    "transferred": _("Transferred to a department (转办)"),
    "transfer_reported_back": _("The department reported back"),
    "identity_added": _("The reporter added their identity"),
    "identity_corrected": _("The reporter corrected their identity"),
    "rights_asked": _("The reporter asked to withdraw"),
    "rights_granted": _("A withdrawal request was granted"),
    "rights_refused": _("A withdrawal request was refused"),
    "identity_disclosed": _("Identity disclosed to an investigator"),
    "reporter_message": _("Message from the reporter"),
    "staff_message": _("Message to the reporter"),
    "reporter_added_evidence": _("The reporter added evidence"),
    "retaliation_reported": _("The reporter reported retaliation"),
    "step_added": _("Investigation step added"),
    "step_status": _("Investigation step updated"),
    "investigation_record": _("Investigation record added"),
    "handling_started": _("Handling started"),
    "plan_saved": _("Handling plan saved"),
    "plan_submitted": _("Handling plan submitted for approval"),
    "plan_returned": _("Handling plan returned with comments"),
    "plan_approved": _("Handling plan approved"),
    "measures_implemented": _("Measures carried out"),
    "concluded": _("Concluded"),
    "satisfied": _("The reporter is satisfied"),
    "dissatisfied": _("The reporter is not satisfied"),
    "rehandling_requested": _("The reporter asked for re-handling"),
    "reopened": _("Reopened for re-handling"),
    "rehandling_started": _("Re-handling started"),
    "protection_plan": _("Protection plan recorded"),
    "leniency_granted": _("Leniency granted"),
    "deadline_paused": _("Deadline clock stopped"),
    "deadline_resumed": _("Deadline clock restarted"),
    "deadline_unknown": _("Deadline not computed: the working-day calendar lacks a year"),
    "deadline_warning_50": _("Half of the time for a deadline used"),
    "deadline_warning_80": _("80 percent of the time for a deadline used"),
    "deadline_overdue": _("Deadline passed"),
    "extension_requested": _("Deadline extension requested"),
    "extended": _("Deadline extended"),
    "extension_refused": _("Deadline extension refused"),
    "reward_proposed": _("Reward proposed"),
    "reward_approved": _("Reward approved"),
    "reward_refused": _("Reward refused"),
    "reward_claimed": _("Reward claimed by the reporter"),
    "reward_paid": _("Reward paid"),
    "archived": _("Archived"),
}
# audit log actions (AuditEntry.action)
AUDIT_ACTIONS = {
    "audit.view": _("Read the audit log"),
    "audit.export": _("Exported the audit log"),
    "calendar.override": _("Changed the working-day calendar"),
    "calendar.override_removed": _("Removed a working-day calendar change"),
    "case.accept": _("Accepted a case"),
    "case.archive": _("Archived a case"),
    "case.classify": _("Classified a case"),
    "case.conclude": _("Concluded a case"),
    "case.conflict_declared": _("Declared a conflict of interest"),
    "case.deadlines_view": _("Opened the deadlines of a case"),
    "case.destroy": _("Destroyed a case"),
    "case.conflict_dismissed": _("Found a name match at arrival to be another person"),
    "case.export": _("Exported a case"),
    "case.key_shared": _("Shared a case key"),
    "case.message": _("Sent a message to the reporter"),
    "case.note": _("Added an internal note"),
    "case.progress_message": _("Sent a progress message to the reporter"),
    "case.register": _("Registered a report"),
    "case.rehandle": _("Started re-handling"),
    "case.reject": _("Did not accept a case"),
    "case.split": _("Split a case in two"),
    "case.subject_added": _("Added a person the report is about"),
    "case.subject_linked": _("Linked a person to a staff account"),
    "case.transfer": _("Transferred a case to a department"),
    "case.view": _("Opened a case"),
    "case.view_handling": _("Opened the handling plan"),
    "case.view_investigation": _("Opened the investigation"),
    "case.view_reward": _("Opened the reward"),
    "category.add": _("Added a category"),
    "category.change": _("Changed a category"),
    "deadline.calendar_missing": _("Deadline not computed (calendar year missing)"),
    "deadline.close": _("Closed a deadline"),
    "deadline.extension_approved": _("Approved a deadline extension"),
    "deadline.extension_refused": _("Refused a deadline extension"),
    "deadline.extension_requested": _("Asked for a deadline extension"),
    "deadline.handler_changed": _("Changed the person responsible for a deadline"),
    "deadline.open": _("Started a deadline"),
    "deadline.overdue_notice": _("Overdue notice (督办)"),
    "deadline.pause": _("Stopped a deadline clock"),
    "deadline.resume": _("Restarted a deadline clock"),
    "deadline.warning": _("Deadline warning"),
    "department.add": _("Added a department"),
    "department.disable": _("Disabled a department"),
    "department.enable": _("Enabled a department"),
    "department.rename": _("Renamed a department"),
    "file.download": _("Downloaded a file"),
    "identity.approve": _("Approved an identity request"),
    "identity.refuse": _("Refused an identity request"),
    "identity.request": _("Asked for the reporter's identity"),
    "identity.view": _("Read the reporter's identity"),
    "investigation.record": _("Added an investigation record"),
    "investigation.step_add": _("Added an investigation step"),
    "investigation.step_status": _("Updated an investigation step"),
    "notify.duty": _("Changed the duty roster"),
    "notify.prefs": _("Changed notification settings"),
    "notify.run": _("Sent notifications"),
    "password.change": _("Changed their password"),
    "password.recover": _("Recovered their account"),
    "password.upgrade": _("Password hash upgraded"),
    "plan.approve": _("Approved a handling plan"),
    "plan.implementation": _("Recorded the implementation of measures"),
    "plan.return": _("Returned a handling plan"),
    "plan.save": _("Saved a handling plan"),
    "plan.submit": _("Submitted a handling plan"),
    "privacy.settings": _("Changed the privacy settings"),
    "protection.leniency": _("Recorded leniency"),
    "protection.plan": _("Saved a protection plan"),
    "retention.destruction_approved": _("Approved a destruction"),
    "retention.hold_cleared": _("Lifted a legal hold"),
    "retention.hold_set": _("Set a legal hold"),
    "retention.identity_destroyed": _("Destroyed a reporter's identity"),
    "retention.run": _("Ran the retention job"),
    "rights.grant": _("Granted a withdrawal request"),
    "rights.refuse": _("Refused a withdrawal request"),
    "reward.approve": _("Approved a reward"),
    "reward.paid": _("Recorded a reward payment"),
    "reward.propose": _("Proposed a reward"),
    "reward.refuse": _("Refused a reward"),
    "signin.failure": _("Failed sign-in"),
    "signin.password_ok": _("Password accepted at sign-in"),
    "signin.success": _("Signed in"),
    "signout": _("Signed out"),
    "statistics.export": _("Exported the statistics"),
    "statistics.report": _("Opened the printable statistics report"),
    "statistics.view": _("Opened the statistics"),
    "team.add": _("Added a team member"),
    "team.remove": _("Removed a team member"),
    "totp.enrol": _("Set up two-step sign-in"),
    "transfer.add_files": _("Added files to a transfer package"),
    "transfer.export": _("Downloaded a transfer package"),
    "transfer.report_back": _("Reported back on a transfer"),
    "transfer.view": _("Opened a transfer package"),
    "user.add": _("Created a staff account"),
    "user.disable": _("Disabled a staff account"),
    "user.enable": _("Enabled a staff account"),
    "user.reset_two_step": _("Reset two-step sign-in of an account"),
    "user.roles": _("Changed the roles of an account"),
    "user.appoint_independent": _("Appointed an independent reviewer"),
    "user.revoke_independent": _("Revoked an independent reviewer"),
    "deadline.recomputed": _("Recomputed a provisional deadline"),
    "calendar.year_confirmed": _("Confirmed a year's working-day calendar"),
    "notify.read": _("Marked notices as read"),
}

GROUPS: dict[str, dict[str, str]] = {
    "role": ROLES,
    "channel": CHANNELS,
    "kind": KINDS,
    "relation": RELATIONS,
    "identity_mode": IDENTITY_MODES,
    "severity": SEVERITIES,
    "risk": RISKS,
    "stage": STAGES,
    "outcome": OUTCOMES,
    "function": FUNCTIONS,
    "reward_status": REWARD_STATUSES,
    "deadline_stage": DEADLINE_STAGES,
    "deadline_pause": PAUSE_REASONS,
    "notice_kind": NOTICE_KINDS,
    "file_kind": FILE_KINDS,
    "event": EVENTS,
    "audit_action": AUDIT_ACTIONS,
}


def event_msgid(kind: str) -> str | None:
    """The word of a timeline event; ``concluded:<outcome>`` names the outcome too."""
    if kind in EVENTS:
        return EVENTS[kind]
    head, _sep, _rest = kind.partition(":")
    return EVENTS.get(head)


def audit_action_msgid(action: str) -> str | None:
    return AUDIT_ACTIONS.get(action)


def msgid_for(group: str, code: str | None) -> str | None:
    """The msgid of ``code`` in ``group`` (a key of ``GROUPS``); None when it has none."""
    if code is None or code == "":
        return None
    if group == "event":
        return event_msgid(code)
    return GROUPS[group].get(code)
