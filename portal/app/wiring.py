"""Wiring of the layers: the service container with the workflow's commit hooks."""

from __future__ import annotations

from investigator.domain.lifecycle import deadline_hook
from portal.kernel.services import Services, open_services
from portal.kernel.settings import Settings


def build_services(settings: Settings) -> Services:
    """The services every entry point (app, CLI, tests) runs with: the kernel's container, and
    a pre-commit hook that turns each stage change of the transaction into deadline moves."""
    services = open_services(settings)
    services.db.pre_commit_hooks.insert(0, deadline_hook(settings))
    return services
