"""The registry of remediation actions: action name (``platform.restart``) → action class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, Union

from pydantic import BeforeValidator, Discriminator, Tag
from pydantic_core import PydanticCustomError

from tocsin.remediation.base import Action, ActionConfig

_ACTIONS: dict[str, type[Action[Any]]] = {}

A = TypeVar("A", bound=type[Action[Any]])


def register(action: A) -> A:
    """Class decorator: make ``action`` available as ``action: <action.name>`` in the config."""
    if action.name in _ACTIONS:
        raise ValueError(f"remediation action {action.name!r} registered twice")
    _ACTIONS[action.name] = action
    return action


def action_types() -> dict[str, type[Action[Any]]]:
    """Every registered action, by name."""
    return dict(_ACTIONS)


def action_config_union() -> Any:
    """The discriminated union of every action's config model, tagged by ``action``."""
    models = {name: action.config_model for name, action in sorted(_ACTIONS.items())}
    if len(models) == 1:
        # typing folds a one-member Union into the member, which takes no discriminator.
        return Annotated[next(iter(models.values())), BeforeValidator(_known_action)]
    members = tuple(Annotated[model, Tag(name)] for name, model in models.items())
    return Annotated[Union[members], Discriminator(_action_tag)]  # noqa: UP007


def _known_action(value: Any) -> Any:
    if _action_tag(value) is None:
        raise PydanticCustomError("union_tag_invalid", "unknown remediation action")
    return value


def _action_tag(value: Any) -> str | None:
    name = value.get("action") if isinstance(value, Mapping) else getattr(value, "action", None)
    return name if isinstance(name, str) and name in _ACTIONS else None


def build_action(config: ActionConfig) -> Action[Any]:
    """The action ``config`` describes."""
    action = _ACTIONS.get(config.action)
    if action is None:
        raise ValueError(f"unknown remediation action {config.action!r}")
    return action(config)
