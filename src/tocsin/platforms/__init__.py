"""Platforms: clients of hosting platforms (Render, …), one module per platform type.

The ``deploy`` check reads deploys through a :class:`Platform`; remediation
actions (restart, rollback, redeploy) act through it. Adding a platform type
touches one file: a ``PlatformConfig`` subclass with a ``type: Literal["name"]``
field and a ``Platform`` subclass, decorated with :func:`register`.
"""

from __future__ import annotations

from tocsin.platforms.base import (
    Commit,
    Deploy,
    DeployStatus,
    Platform,
    PlatformConfig,
    PlatformError,
    PlatformService,
    PlatformTarget,
)
from tocsin.platforms.registry import (
    PlatformClients,
    build_platform,
    platform_config_union,
    platform_types,
    register,
)

# Importing a platform module registers it.
from tocsin.platforms import render as _render  # noqa: F401  isort: skip

__all__ = [
    "Commit",
    "Deploy",
    "DeployStatus",
    "Platform",
    "PlatformClients",
    "PlatformConfig",
    "PlatformError",
    "PlatformService",
    "PlatformTarget",
    "build_platform",
    "platform_config_union",
    "platform_types",
    "register",
]
