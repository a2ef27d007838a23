"""Remediation policies as configured, and the budget that decides whether one may act.

A policy is a named fix under ``remediation:`` (SEMANTICS.md, "Safe
remediation", after Monit): which action to run, how long to wait before
verifying, and how often it may run — at most ``max_attempts`` within a
sliding window of ``per``, no sooner than ``cooldown`` after the previous one.
When the budget is spent the service is disabled for remediation until a
person enables it again; at most one remediation runs per service at a time.

:func:`decide` is a pure function of the policy, the past attempts and the
current state, with the time passed in: no I/O and no clock of its own, so the
orchestrator and the tests drive it alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from tocsin.config.durations import Duration, format_duration
from tocsin.config.issues import did_you_mean
from tocsin.remediation.base import ActionConfig

KNOWN_ACTIONS = frozenset({
    "platform.restart", "platform.rollback", "platform.redeploy", "command", "webhook",
})
"""Action names a policy may use. The action modules will supply this list later."""

PLATFORM_ACTION_PREFIX = "platform."
"""Actions with this prefix act on the service's platform, so the service needs one."""

MODE_KEY = "mode"
"""The one key of ``remediation:`` that is not a policy name."""


class RemediationMode(StrEnum):
    """``active`` runs the actions; ``passive`` only records and reports what it would do."""

    ACTIVE = "active"
    PASSIVE = "passive"


class RemediationPolicy(BaseModel):
    """One named fix: its action, verification delay and attempt budget.

    Keys other than these belong to the action (``argv``, ``url``, ``headers``,
    ``env``, ``timeout``, ``clear_cache``…); they are kept as written in
    :attr:`action_options` until the actions give them a schema.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    action: str
    verify_after: Duration = 30.0
    max_attempts: int = Field(default=3, ge=1)
    per: Duration = 3600.0
    cooldown: Duration = 0.0
    during_silence: bool = False  # act even while the alert is silenced or in maintenance
    _action_config: ActionConfig | None = PrivateAttr(default=None)

    @field_validator("action")
    @classmethod
    def _action_is_known(cls, action: str) -> str:
        if action not in KNOWN_ACTIONS:
            hint = did_you_mean(action, sorted(KNOWN_ACTIONS), otherwise="one of")
            raise ValueError(f"unknown action {action!r}{hint}")
        return action

    @field_validator("per")
    @classmethod
    def _window_is_positive(cls, seconds: float) -> float:
        if seconds <= 0:
            raise ValueError("per must be longer than zero, e.g. 1h")
        return seconds

    @model_validator(mode="after")
    def _action_options_fit_the_action(self) -> RemediationPolicy:
        # The action's own keys (argv, url, clear_cache, timeout, …) are checked by
        # the action's config model, so a typo is an error here, not at 3 a.m.
        from tocsin.remediation.registry import action_types

        action = action_types().get(self.action)
        if action is None:
            return self
        try:
            config = action.config_model.model_validate(
                {"action": self.action, **self.action_options})
        except ValidationError as error:
            problems = []
            for detail in error.errors():
                where = ".".join(str(part) for part in detail["loc"])
                if detail["type"] == "extra_forbidden":
                    problems.append(f"unknown key {where!r} for action {self.action}")
                else:
                    message = str(detail["msg"]).removeprefix("Value error, ")
                    problems.append(f"{where}: {message}" if where else message)
            raise ValueError("; ".join(problems)) from None
        self._action_config = config
        return self

    @property
    def action_config(self) -> ActionConfig:
        """The action's validated config, ready for :func:`build_action`."""
        assert self._action_config is not None
        return self._action_config

    @property
    def acts_on_platform(self) -> bool:
        """Whether the action needs the service's platform (restart, rollback, redeploy)."""
        return self.action.startswith(PLATFORM_ACTION_PREFIX)

    @property
    def action_options(self) -> dict[str, Any]:
        """The action's own keys, as written."""
        return dict(self.model_extra or {})


class RemediationSettings(BaseModel):
    """The ``remediation:`` section: ``mode`` beside the policies, by name."""

    model_config = ConfigDict(extra="allow", frozen=True)

    mode: RemediationMode = RemediationMode.ACTIVE
    # Every other key is a policy: `remediation: {restart: {action: …}}`, as PRODUCT.md writes it.
    __pydantic_extra__: dict[str, RemediationPolicy] = Field(init=False)

    @property
    def policies(self) -> dict[str, RemediationPolicy]:
        """The policies by name."""
        return dict(self.__pydantic_extra__ or {})


class Refusal(StrEnum):
    """Why a remediation may not act now."""

    DISABLED = "disabled"
    IN_FLIGHT = "in_flight"
    SILENCED = "silenced"
    EXHAUSTED = "exhausted"
    COOLING_DOWN = "cooling_down"


@dataclass(frozen=True, slots=True)
class DisabledRemediation:
    """A service whose remediation stopped after its budget was spent, until a person enables it."""

    service: str
    policy: str
    disabled_at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to act now, and if not, why.

    ``passive``: allowed, but the mode is passive — record and report, do not act.
    ``exhausted``: the budget is spent; the caller disables the service
    (``Store.disable_remediation``) and raises "remediation exhausted".
    ``retry_at``: when a cooldown ends (None for other refusals).
    """

    allowed: bool
    message: str
    refusal: Refusal | None = None
    passive: bool = False
    retry_at: float | None = None

    @property
    def exhausted(self) -> bool:
        """The refusal that must disable the service and wait for a person."""
        return self.refusal is Refusal.EXHAUSTED


def decide(
    policy: RemediationPolicy,
    attempts: Sequence[float],
    *,
    now: float,
    in_flight: bool = False,
    disabled: DisabledRemediation | None = None,
    silenced: bool = False,
    mode: RemediationMode = RemediationMode.ACTIVE,
) -> Decision:
    """May ``policy`` act on a service now?

    ``attempts`` are the start times of this policy's past attempts on the
    service that count against the budget (see ``AttemptState.counts``);
    ``in_flight`` says whether any remediation of the service is unfinished;
    ``disabled`` is the service's entry in ``Store.disabled_services()``.
    Refusals are checked in order: disabled, in flight, silenced, exhausted,
    cooling down.
    """
    if disabled is not None:
        return _refuse(Refusal.DISABLED,
                       f"disabled after {disabled.policy!r} ran out of attempts "
                       f"({disabled.reason}); waiting for a person to enable it again")
    if in_flight:
        return _refuse(Refusal.IN_FLIGHT, "already remediating this service")
    if silenced and not policy.during_silence:
        return _refuse(Refusal.SILENCED, "alert is silenced")
    recent = sorted(at for at in attempts if now - policy.per < at <= now)
    if len(recent) >= policy.max_attempts:
        return _refuse(Refusal.EXHAUSTED,
                       f"exhausted: {len(recent)} attempt{'s' if len(recent) != 1 else ''} "
                       f"in the last {format_duration(policy.per)}")
    if recent and policy.cooldown > 0 and now < recent[-1] + policy.cooldown:
        until = recent[-1] + policy.cooldown
        when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return Decision(False, f"cooling down until {when} "
                               f"(in {format_duration(until - now)})",
                        Refusal.COOLING_DOWN, retry_at=until)
    left = policy.max_attempts - len(recent)
    if mode is RemediationMode.PASSIVE:
        return Decision(True, f"passive mode: would run {policy.action}", passive=True)
    return Decision(True, f"{policy.action}: attempt {len(recent) + 1} of "
                          f"{policy.max_attempts} (then {left - 1} left)")


def _refuse(refusal: Refusal, message: str) -> Decision:
    return Decision(False, message, refusal)


@dataclass(frozen=True, slots=True)
class AttemptBudget:
    """The budget of one policy on one service: :func:`decide` with its inputs bound."""

    policy: RemediationPolicy
    attempts: Sequence[float] = ()
    in_flight: bool = False
    disabled: DisabledRemediation | None = None
    silenced: bool = False
    mode: RemediationMode = RemediationMode.ACTIVE

    def may_act(self, now: float) -> Decision:
        """Whether the policy may act at ``now``; see :func:`decide`."""
        return decide(self.policy, self.attempts, now=now, in_flight=self.in_flight,
                      disabled=self.disabled, silenced=self.silenced, mode=self.mode)

    def remaining(self, now: float) -> int:
        """Attempts left in the window that ends at ``now``."""
        recent = sum(1 for at in self.attempts if now - self.policy.per < at <= now)
        return max(self.policy.max_attempts - recent, 0)
