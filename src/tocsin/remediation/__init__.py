"""Remediation actions: how Tocsin tries to fix a service, one module per action.

An action acts once on a confirmed alert and answers an :class:`ActionOutcome`
or raises :class:`RemediationError` (``permanent`` says whether acting again
can help). When to act, how often, and whether it worked are the policy's
business, not the action's. Adding an action touches one file: an
``ActionConfig`` subclass with an ``action: Literal["name"]`` field and an
``Action`` subclass, decorated with :func:`register`.
"""

from __future__ import annotations

from tocsin.remediation.base import (
    Action,
    ActionConfig,
    ActionOutcome,
    ActionRequest,
    PlatformHandle,
    RemediationError,
)
from tocsin.remediation.registry import (
    action_config_union,
    action_types,
    build_action,
    register,
)

# Importing an action module registers it.
from tocsin.remediation import command as _command  # noqa: F401  isort: skip
from tocsin.remediation import platform_actions as _platform_actions  # noqa: F401  isort: skip
from tocsin.remediation import webhook as _webhook  # noqa: F401  isort: skip

__all__ = [
    "Action",
    "ActionConfig",
    "ActionOutcome",
    "ActionRequest",
    "PlatformHandle",
    "RemediationError",
    "action_config_union",
    "action_types",
    "build_action",
    "register",
]
