"""``platform.restart``, ``platform.rollback``, ``platform.redeploy``: act through the platform.

Each acts on the alert's service through its platform client (Render: ``POST
/services/{id}/restart``, ``…/rollback {"deployId"}``, ``…/deploys``). The
client maps HTTP answers onto :class:`~tocsin.platforms.PlatformError`
(401/403/404 and other 4xx permanent; 429, 5xx, its own per-call timeout and
connection errors transient); here that becomes a :class:`RemediationError`
naming the action and the service. The action's ``timeout`` bounds every call
it makes together.
"""

from __future__ import annotations

import builtins
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from tocsin.config.secrets import Redactor
from tocsin.platforms.base import Deploy, DeployStatus, PlatformError
from tocsin.remediation.base import (
    Action,
    ActionConfig,
    ActionOutcome,
    ActionRequest,
    PlatformHandle,
    RemediationError,
    platform_error,
)
from tocsin.remediation.registry import register


class RestartConfig(ActionConfig):
    """``action: platform.restart``: restart the running instances, no new build."""

    action: Literal["platform.restart"]


class RollbackConfig(ActionConfig):
    """``action: platform.rollback``: deploy again the last live deploy before the newest.

    ``search_depth`` is how many of the newest deploys are searched for it.
    """

    action: Literal["platform.rollback"]
    search_depth: Annotated[int, Field(ge=2, le=100)] = 20


class RedeployConfig(ActionConfig):
    """``action: platform.redeploy``: deploy the latest commit again, optionally clearing the
    build cache."""

    action: Literal["platform.redeploy"]
    clear_cache: bool = False


def _handle(name: str, request: ActionRequest) -> PlatformHandle:
    if request.platform is None:
        raise RemediationError(f"{name} for {request.who}: the service has no platform "
                               "(set its platform and service_id)", permanent=True)
    return request.platform


def _translated(name: str, request: ActionRequest, error: PlatformError) -> RemediationError:
    # The Render client never puts the key in a message; redact anyway, in case a
    # future platform client does.
    translated = platform_error(name, request, error)
    if request.platform is not None:
        key = request.platform.client.config.api_key.get_secret_value()
        translated.message = Redactor([key]).redact(translated.message)
        translated.args = (translated.message,)
    return translated


def _display(handle: PlatformHandle) -> str:
    return str(getattr(handle.client, "display_name", handle.client.name))


@register
class RestartAction(Action[RestartConfig]):
    """Restart the service on its platform; accepted when the platform says so (Render: 200)."""

    name: ClassVar[str] = "platform.restart"
    config_model: ClassVar[builtins.type[ActionConfig]] = RestartConfig

    async def attempt(self, request: ActionRequest) -> ActionOutcome:
        handle = _handle(self.name, request)
        try:
            await handle.client.restart(handle.service_id)
        except PlatformError as error:
            raise _translated(self.name, request, error) from None
        return ActionOutcome(True, f"{_display(handle)} accepted the restart of service "
                             f"{handle.service_id}", {"service_id": handle.service_id})


def rollback_target(deploys: list[Deploy]) -> Deploy | None:
    """The newest ``live`` deploy after the newest one (``deploys`` newest first), if any.

    The newest deploy is the one being rolled away from (typically failed); the
    one still serving before it is ``live``.
    """
    return next((deploy for deploy in deploys[1:] if deploy.status is DeployStatus.LIVE), None)


@register
class RollbackAction(Action[RollbackConfig]):
    """Roll the service back to the last live deploy before its newest; refuse when none."""

    name: ClassVar[str] = "platform.rollback"
    config_model: ClassVar[builtins.type[ActionConfig]] = RollbackConfig

    async def attempt(self, request: ActionRequest) -> ActionOutcome:
        handle = _handle(self.name, request)
        try:
            deploys = await handle.client.latest_deploys(handle.service_id,
                                                         limit=self.config.search_depth)
            target = rollback_target(deploys)
            if target is None:
                raise RemediationError(
                    f"{self.name} for {request.who}: no earlier live deploy to roll back to "
                    f"(searched the {len(deploys)} newest deploys of {handle.service_id})",
                    permanent=True)
            new = await handle.client.rollback(handle.service_id, target.id)
        except PlatformError as error:
            raise _translated(self.name, request, error) from None
        return ActionOutcome(
            True, f"{_display(handle)} accepted the rollback of service {handle.service_id} "
            f"to {target.id}: new deploy {new.id} ({new.status_text or new.status.value})",
            {"service_id": handle.service_id, "deploy_id": new.id,
             "rolled_back_to": target.id, "rolled_back_from": deploys[0].id})


@register
class RedeployAction(Action[RedeployConfig]):
    """Deploy the service's latest commit again (``clear_cache`` rebuilds from scratch)."""

    name: ClassVar[str] = "platform.redeploy"
    config_model: ClassVar[builtins.type[ActionConfig]] = RedeployConfig

    async def attempt(self, request: ActionRequest) -> ActionOutcome:
        handle = _handle(self.name, request)
        try:
            deploy = await handle.client.trigger_deploy(handle.service_id,
                                                        clear_cache=self.config.clear_cache)
        except PlatformError as error:
            raise _translated(self.name, request, error) from None
        what = f"new deploy {deploy.id}" if deploy is not None else "deploy queued (id unknown)"
        return ActionOutcome(
            True, f"{_display(handle)} accepted the redeploy of service {handle.service_id}"
            f"{' (build cache cleared)' if self.config.clear_cache else ''}: {what}",
            {"service_id": handle.service_id, "deploy_id": deploy.id if deploy else None})
