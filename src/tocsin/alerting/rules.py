"""Alert rules as written under a check's ``alerts:``: condition, severity, timing, texts.

A rule is read and checked once, at config load: its condition is parsed
(:mod:`tocsin.alerting.conditions`), its severity named, its summary and
description templates compiled in a sandbox, so that nothing about a rule can
fail while an incident is going on.

Confirmation (SEMANTICS.md, "pending → firing"): ``confirm: N`` needs N
consecutive results where the condition held *after the first*, the check
re-run every ``retry_interval`` meanwhile; ``for: 5m`` needs the condition to
have held for five minutes. The two are exclusive. Without either, ``down`` and
``failed`` take one quick re-check (``confirm: 1``) and comparisons fire at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from jinja2 import Template, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from tocsin.alerting.conditions import Condition, Outcome, StatusCondition, parse_condition
from tocsin.alerting.model import Alert, Severity
from tocsin.config.durations import Duration

if TYPE_CHECKING:
    from tocsin.probes.base import CheckSpec

TEMPLATE_VARIABLES = ("check", "service", "value", "threshold", "severity", "labels", "message")
"""What a ``summary`` or ``description`` template may use."""

_SEVERITY_WORDS = {severity.label: severity for severity in Severity}


def parse_severity(value: object) -> Severity:
    """``P1``–``P4`` in any case, or the words critical, high, medium, low."""
    if isinstance(value, Severity):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.upper() in Severity.__members__:
            return Severity[text.upper()]
        if text.lower() in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[text.lower()]
    raise ValueError(f"unknown severity {value!r}: use one of P1, P2, P3, P4 "
                     "(critical, high, medium, low)")


SeverityName = Annotated[Severity, BeforeValidator(parse_severity),
                         PlainSerializer(lambda severity: severity.value)]
"""A severity as config writes it."""

ConditionText = Annotated[
    Condition,
    PlainValidator(parse_condition),
    PlainSerializer(lambda condition: condition.text),
    WithJsonSchema({"type": "string"}),
]
"""A condition, parsed from its text at load and written back as that text."""


class AlertRule(BaseModel):
    """One entry of a check's ``alerts:``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    when: ConditionText
    severity: SeverityName
    for_: Duration | None = Field(default=None, alias="for")
    confirm: int | None = Field(default=None, ge=0, le=100)
    retry_interval: Duration = 2.0
    recover: int = Field(default=2, ge=1, le=100)
    name: str | None = Field(default=None, min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    labels: dict[str, str] = Field(default_factory=dict)
    runbook: str | None = None
    summary: str | None = None
    description: str | None = None
    remediate: str | None = None  # a remediation's name (the `remediation:` section)

    @field_validator("summary", "description")
    @classmethod
    def _template_compiles(cls, source: str | None) -> str | None:
        if source is not None:
            check_template(source)
        return source

    @field_validator("retry_interval")
    @classmethod
    def _retry_interval_positive(cls, seconds: float) -> float:
        if seconds < 1:
            raise ValueError("retry_interval must be at least 1s, e.g. 2s")
        return seconds

    @model_validator(mode="after")
    def _for_or_confirm(self) -> AlertRule:
        if self.for_ is not None and self.confirm is not None:
            raise ValueError("`for` and `confirm` cannot both be set: use `for: 5m` to need "
                             "the condition for a time, or `confirm: 2` to need re-checks")
        return self

    @property
    def condition(self) -> Condition:
        return self.when

    @property
    def metric(self) -> str:
        """The alert's name within its check: ``name``, else ``down``, ``failed``, the value."""
        return self.name or self.when.metric

    @property
    def effective_confirm(self) -> int:
        """Re-checks needed after the first failing result (0 with ``for``)."""
        if self.confirm is not None:
            return self.confirm
        if self.for_ is None and isinstance(self.when, StatusCondition):
            return 1
        return 0

    def fingerprint(self, check: str, labels: Mapping[str, str] | None = None) -> str:
        """``<check>:<metric>``, plus ``{k=v,…}`` of the identifying labels when there are any.

        The identifying labels are the rule's own, updated with ``labels`` (say,
        a disk mount); a service's free-form labels are not identifying.
        """
        identifying = {**self.labels, **(labels or {})}
        base = f"{check}:{self.metric}"
        if not identifying:
            return base
        pairs = ",".join(f"{key}={identifying[key]}" for key in sorted(identifying))
        return f"{base}{{{pairs}}}"

    # -- texts ---------------------------------------------------------------------

    def template_context(self, check: str, service: str | None, outcome: Outcome, *,
                         message: str = "", labels: Mapping[str, str] | None = None,
                         value: float | None = None) -> dict[str, Any]:
        """The variables of :data:`TEMPLATE_VARIABLES` for one evaluation."""
        return {
            "check": check, "service": service or "",
            "value": outcome.value if value is None else value,
            "threshold": outcome.threshold, "severity": self.severity.value,
            "labels": {**self.labels, **(labels or {})}, "message": message,
        }

    def default_summary(self, context: Mapping[str, Any], outcome: Outcome) -> str:
        """``backend:http is down: connection refused``, ``… response_time 1234 ms > 1000 ms``."""
        check, message = context.get("check", ""), context.get("message", "")
        if isinstance(self.when, StatusCondition):
            text = f"{check} {self.when.describe(outcome)}"
            return f"{text}: {message}" if message else text
        return f"{check} {self.when.describe(outcome)}"

    def render_summary(self, spec: CheckSpec[Any], alert: Alert, outcome: Outcome) -> str:
        """The alert's one-line summary: the rule's template, or :meth:`default_summary`."""
        context = self._context(spec, alert, outcome)
        if self.summary is None:
            return self.default_summary(context, outcome)
        return render_template(self.summary, context) or self.default_summary(context, outcome)

    def render_description(self, spec: CheckSpec[Any], alert: Alert, outcome: Outcome) -> str:
        """The rule's description template rendered, or empty."""
        if self.description is None:
            return ""
        return render_template(self.description, self._context(spec, alert, outcome))

    def _context(self, spec: CheckSpec[Any], alert: Alert, outcome: Outcome) -> dict[str, Any]:
        return self.template_context(spec.name, spec.service, outcome, message=alert.message,
                                     labels=alert.labels, value=alert.value)


# -- templates -------------------------------------------------------------------------

_ENVIRONMENT = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


def check_template(source: str) -> None:
    """Refuse a template that does not compile or names a variable no alert has."""
    try:
        tree = _ENVIRONMENT.parse(source)
    except TemplateSyntaxError as error:
        raise ValueError(f"invalid template: {error.message} (template line {error.lineno})"
                         ) from None
    unknown = sorted(meta.find_undeclared_variables(tree) - set(TEMPLATE_VARIABLES))
    if unknown:
        raise ValueError(f"unknown template variable {unknown[0]!r} "
                         f"(available: {', '.join(TEMPLATE_VARIABLES)})")


def render_template(source: str, context: Mapping[str, Any]) -> str:
    """Render a checked template; a failure at run time yields a note, never an exception."""
    try:
        return _compiled(source).render(**context).strip()
    except Exception as error:  # an alert must go out even when its template breaks
        return f"(template failed: {type(error).__name__})"


@lru_cache(maxsize=1024)
def _compiled(source: str) -> Template:
    return _ENVIRONMENT.from_string(source)
