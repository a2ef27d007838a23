"""Reading ``tocsin.yaml``: parse, interpolate, validate, resolve; refuse with every issue.

The stages, each reporting :class:`ConfigIssue` values with file, key path and line::

    text ─► parse_yaml ─► interpolate (${VAR}) ─► schema + cross-check rules ─► CheckSpecs

A YAML syntax error stops at the first stage; everything after it is reported
together, so one run of ``tocsin validate`` lists every mistake.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tocsin.config.errors import validation_issues
from tocsin.config.interpolate import interpolate
from tocsin.config.issues import ConfigError, ConfigIssue
from tocsin.config.model import TocsinConfig, config_model
from tocsin.config.references import literal_secret_issues, reference_issues
from tocsin.config.resolve import resolve_checks, rule_issues
from tocsin.config.secrets import Redactor
from tocsin.config.yamlsource import parse_yaml
from tocsin.probes.base import CheckSpec

DEFAULT_CONFIG_PATH = Path(__file__).with_name("default.yaml")
"""The config ``tocsin run`` uses when there is no ``./tocsin.yaml``."""

EXAMPLE_CONFIG_PATH = Path(__file__).with_name("example.yaml")
"""An annotated example of every section."""

BUILTIN_SOURCE = "<built-in default>"
LOCAL_CONFIG_NAME = "tocsin.yaml"


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A validated config and what was derived from it.

    ``checks`` holds every service check resolved against the defaults,
    including those in ``skipped``: checks of types the brief plans but no
    probe implements yet, which the scheduler does not run.
    """

    config: TocsinConfig
    source: str  # an absolute path, or "<built-in default>"
    checks: tuple[CheckSpec[Any], ...]
    redactor: Redactor
    skipped: tuple[str, ...] = ()


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load ``path``; with None, ``./tocsin.yaml`` if it exists, else the built-in default.

    Raises :class:`ConfigError` listing every issue found.
    """
    if path is None:
        local = Path(LOCAL_CONFIG_NAME)
        if not local.exists():
            text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
            return load_config_text(text, BUILTIN_SOURCE, env)
        path = local
    text = _read(path)
    loaded = load_config_text(text, str(path), env)
    return replace(loaded, source=str(path.resolve()))


def load_config_text(
    text: str, source_name: str = LOCAL_CONFIG_NAME, env: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Load a config from ``text``; ``source_name`` is the file name issues show."""
    document = parse_yaml(text, source_name)
    if not isinstance(document.data, dict):
        raise ConfigError([ConfigIssue(
            source_name, "", 1, "the config must be a mapping of keys, e.g. `services:`"
        )])
    interpolated = interpolate(
        document.data, os.environ if env is None else env, source_name, document.lines
    )
    redactor = Redactor(interpolated.secrets)
    issues = (interpolated.issues
              + rule_issues(interpolated.data, source_name, document.lines)
              + reference_issues(interpolated.data, source_name, document.lines)
              + literal_secret_issues(interpolated.data, interpolated.substituted,
                                      source_name, document.lines))
    model = config_model()
    try:
        config = model.model_validate(interpolated.data)
    except ValidationError as error:
        issues += validation_issues(
            error, model, interpolated.data, source_name, document.lines, redactor,
            skip=interpolated.failed,
        )
    if issues:
        raise ConfigError(replace(issue, message=redactor.redact(issue.message))
                          for issue in issues)
    checks, skipped = resolve_checks(config)
    return LoadedConfig(config, source_name, checks, redactor, skipped)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or type(error).__name__
        message = f"cannot read the config file: {reason}"
    except UnicodeDecodeError:
        message = "cannot read the config file: it is not UTF-8 text"
    raise ConfigError([ConfigIssue(str(path), "", None, message)])
