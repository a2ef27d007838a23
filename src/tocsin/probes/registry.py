"""The registry of check types: type name → probe class (and its config model)."""

from __future__ import annotations

from typing import Any, TypeVar

from tocsin.probes.base import CheckSpec, Probe, ProbeError
from tocsin.probes.context import ProbeContext

_PROBES: dict[str, type[Probe[Any]]] = {}
# Check types Tocsin makes for itself from other sections (an SLO is evaluated by
# an `slo` check): runnable, but not a type a config may write under `checks:`.
_INTERNAL: dict[str, type[Probe[Any]]] = {}

# Check types the product brief names that later issues implement. The config
# accepts them (so a config written for the brief validates) and the scheduler
# skips them with a warning until their probe exists.
PLANNED_TYPES: frozenset[str] = frozenset()

P = TypeVar("P", bound=type[Probe[Any]])


def register(probe: P) -> P:
    """Class decorator: make ``probe`` available as check ``type: probe.type``."""
    if probe.type in _PROBES or probe.type in _INTERNAL:
        raise ProbeError(f"check type {probe.type!r} registered twice")
    _PROBES[probe.type] = probe
    return probe


def register_internal(probe: P) -> P:
    """Class decorator: a check type Tocsin builds itself, never written in a config."""
    if probe.type in _PROBES or probe.type in _INTERNAL:
        raise ProbeError(f"check type {probe.type!r} registered twice")
    _INTERNAL[probe.type] = probe
    return probe


def probe_types() -> dict[str, type[Probe[Any]]]:
    """Every registered check type, by name."""
    return dict(_PROBES)


def build_probe(spec: CheckSpec[Any], context: ProbeContext) -> Probe[Any] | None:
    """The probe for ``spec``, or None when its type is planned but not built yet."""
    probe = _PROBES.get(spec.type) or _INTERNAL.get(spec.type)
    if probe is None:
        if spec.type in PLANNED_TYPES:
            return None
        raise ProbeError(f"unknown check type {spec.type!r}")
    return probe(spec, context)
