"""Deadline rules (W10): the stage periods of a profile and their overrides.

Rules (``rules_for(settings)``): profile ``cn`` unless PORTAL_DEADLINE_PROFILE is ``eu``; any
rule can be changed with PORTAL_DEADLINE_<STAGE> such as ``15wd``, ``30d``, ``3m`` or ``10min``,
and the extension limit with PORTAL_DEADLINE_<STAGE>_EXTENSION (``Settings.deadline_rules``):

    ===============  ======================  ============================================
    stage            default (cn)            runs
    ===============  ======================  ============================================
    initial_review   3 working days          from receipt until accepted / rejected /
                                             transferred
    transfer         5 working days          from receipt until the transfer (转办)
    urgent_dispatch  10 minutes              from triage of an urgent case until dispatch
    investigation    15 working days         while the stage is ``investigating``
    handling         30 calendar days, one   from acceptance until concluded; the extension
                     extension <= 30 days    needs an approver and the reason is told to
                                             the reporter
    feedback         2 calendar days         from conclusion, real-name reporters only
    acknowledgement  7 calendar days (eu)    from receipt until triage starts
    eu_feedback      3 months (eu)           from acceptance until concluded
    ===============  ======================  ============================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from portal.kernel.settings import Settings

UNITS = ("working_days", "calendar_days", "months", "minutes")
PAUSE_REASONS = ("awaiting_reporter", "external_appraisal")
LEVELS = (50, 80, 100)  # 100 = overdue


class DeadlineError(ValueError):
    """A refused deadline step; the message is a msgid for the staff member."""


@dataclass(frozen=True)
class Rule:
    amount: int
    unit: str
    max_extension: int = 0  # in the rule's unit; 0 = no extension


CN_RULES: dict[str, Rule] = {
    "initial_review": Rule(3, "working_days"),
    "transfer": Rule(5, "working_days"),
    "urgent_dispatch": Rule(10, "minutes"),
    "investigation": Rule(15, "working_days"),
    "handling": Rule(30, "calendar_days", max_extension=30),
    "feedback": Rule(2, "calendar_days"),
    # re-handling of a reopened case (W9), from the reopening; PORTAL_DEADLINE_REHANDLING
    "rehandling": Rule(30, "calendar_days"),
}
EU_RULES: dict[str, Rule] = {
    "acknowledgement": Rule(7, "calendar_days"),
    "eu_feedback": Rule(3, "months"),
    "rehandling": Rule(3, "months"),
}
PROFILES: dict[str, dict[str, Rule]] = {"cn": CN_RULES, "eu": EU_RULES}

_SPEC = re.compile(r"^\s*(\d{1,4})\s*(wd|d|m|min)\s*$")
_SPEC_UNITS = {"wd": "working_days", "d": "calendar_days", "m": "months", "min": "minutes"}


def parse_rule(spec: str, max_extension: int = 0) -> Rule:
    """``"15wd"``, ``"30d"``, ``"3m"`` or ``"10min"``."""
    match = _SPEC.match(spec)
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"bad deadline rule {spec!r}")
    return Rule(int(match.group(1)), _SPEC_UNITS[match.group(2)], max_extension)


def rules_for(settings: Settings | Mapping[str, str] | None = None) -> dict[str, Rule]:
    """The deadline rules of the configured profile with per-stage overrides applied: from
    ``Settings`` (PORTAL_DEADLINE_PROFILE, PORTAL_DEADLINE_<STAGE>[_EXTENSION]) or from a
    mapping such as ``{"deadline_profile": "eu", "deadline.handling": "30d"}``."""
    extra: dict[str, str] = {}
    if isinstance(settings, Settings):
        extra["deadline_profile"] = settings.deadline_profile
        extra |= {f"deadline.{k}": v for k, v in settings.deadline_rules.items()}
    elif settings is not None:
        extra |= settings
    profile = extra.get("deadline_profile", "cn")
    if profile not in PROFILES:
        raise ValueError(f"unknown deadline profile {profile!r}")
    rules = dict(PROFILES[profile])
    for stage, rule in list(rules.items()):
        limit = int(extra.get(f"deadline.{stage}.extension", rule.max_extension))
        spec = extra.get(f"deadline.{stage}")
        rules[stage] = parse_rule(spec, limit) if spec else Rule(rule.amount, rule.unit, limit)
    return rules
