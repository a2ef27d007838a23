"""Config: ``tocsin.yaml`` read once, validated fully, refused with every error's line.

The loader is imported on first use (PEP 562): the probes import
:mod:`tocsin.config.durations`, and the loader imports the probes, so loading
it eagerly here would make ``import tocsin.probes`` circular.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tocsin.config.durations import (
    Duration,
    Percent,
    Size,
    format_duration,
    parse_duration,
    parse_percent,
    parse_size,
)

if TYPE_CHECKING:
    from tocsin.config.issues import ConfigError, ConfigIssue
    from tocsin.config.loader import (
        DEFAULT_CONFIG_PATH,
        EXAMPLE_CONFIG_PATH,
        LoadedConfig,
        load_config,
        load_config_text,
    )
    from tocsin.config.model import TocsinConfig
    from tocsin.config.secrets import RedactingFilter, Redactor

_LAZY = {
    "ConfigError": "tocsin.config.issues",
    "ConfigIssue": "tocsin.config.issues",
    "DEFAULT_CONFIG_PATH": "tocsin.config.loader",
    "EXAMPLE_CONFIG_PATH": "tocsin.config.loader",
    "LoadedConfig": "tocsin.config.loader",
    "load_config": "tocsin.config.loader",
    "load_config_text": "tocsin.config.loader",
    "TocsinConfig": "tocsin.config.model",
    "RedactingFilter": "tocsin.config.secrets",
    "Redactor": "tocsin.config.secrets",
}

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "EXAMPLE_CONFIG_PATH",
    "ConfigError",
    "ConfigIssue",
    "Duration",
    "LoadedConfig",
    "Percent",
    "RedactingFilter",
    "Redactor",
    "Size",
    "TocsinConfig",
    "format_duration",
    "load_config",
    "load_config_text",
    "parse_duration",
    "parse_percent",
    "parse_size",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tocsin.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
