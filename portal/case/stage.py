"""The stages of a case."""

from __future__ import annotations

# stages in plain words for the reporter (msgids); the workspace sets Case.stage
PUBLIC_STAGES = {
    "received": "Received",
    "triage": "Being reviewed",
    "accepted": "Accepted for handling",
    "investigating": "Under investigation",
    "handling": "Being decided",
    "approval": "Being decided",
    "implementing": "Measures being carried out",
    "concluded": "Concluded",
    "rejected": "Not accepted",
    "transferred": "Passed to the responsible department",
    "reopened": "Reopened for re-handling",
    "archived": "Closed",
}
