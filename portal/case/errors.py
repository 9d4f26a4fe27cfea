"""Refusals of the case workflow, shared by the reporter side and the workspace."""


class WorkflowError(ValueError):
    """A refused workflow step; the message is a msgid for the staff member."""
