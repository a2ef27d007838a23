"""Probes: one module per check type, each registering itself here.

Adding a check type touches one file: define a ``CheckConfig`` subclass with a
``type: Literal["name"]`` field and a ``Probe`` subclass, and decorate the probe
with :func:`register`. The config schema and the scheduler pick it up.
"""

from __future__ import annotations

from tocsin.probes.base import (
    CheckConfig,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Probe,
    ProbeError,
)
from tocsin.probes.context import ProbeContext
from tocsin.probes.registry import PLANNED_TYPES, build_probe, probe_types, register

# Importing a probe module registers it.
from tocsin.probes import http as _http  # noqa: F401  isort: skip
from tocsin.probes import deploy as _deploy  # noqa: F401  isort: skip
from tocsin.probes import database as _database  # noqa: F401  isort: skip
from tocsin.probes import error_rate as _error_rate  # noqa: F401  isort: skip
from tocsin.probes import system as _system  # noqa: F401  isort: skip
from tocsin.probes import tcp as _tcp  # noqa: F401  isort: skip
from tocsin.probes import tls as _tls  # noqa: F401  isort: skip
from tocsin.probes import dns as _dns  # noqa: F401  isort: skip
from tocsin.probes import command as _command  # noqa: F401  isort: skip
from tocsin.probes import metric as _metric  # noqa: F401  isort: skip
from tocsin.probes import heartbeat as _heartbeat  # noqa: F401  isort: skip

__all__ = [
    "PLANNED_TYPES",
    "CheckConfig",
    "CheckResult",
    "CheckSpec",
    "CheckStatus",
    "Probe",
    "ProbeContext",
    "ProbeError",
    "build_probe",
    "probe_types",
    "register",
]
