"""The registry of platform types (type name → client class), and the shared clients.

:class:`PlatformClients` holds one client per configured platform for a
running scheduler (it lives in the :class:`~tocsin.probes.context.ProbeContext`),
so every check of a platform shares its connections and its rate-limit state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar, Union

from pydantic import BeforeValidator, Discriminator, Tag
from pydantic_core import PydanticCustomError

from tocsin.platforms.base import Platform, PlatformConfig, PlatformTarget

_PLATFORMS: dict[str, type[Platform]] = {}

P = TypeVar("P", bound=type[Platform])


def register(platform: P) -> P:
    """Class decorator: make ``platform`` available as ``platforms.<name>.type``."""
    if platform.type in _PLATFORMS:
        raise ValueError(f"platform type {platform.type!r} registered twice")
    _PLATFORMS[platform.type] = platform
    return platform


def platform_types() -> dict[str, type[Platform]]:
    """Every registered platform type, by name."""
    return dict(_PLATFORMS)


def platform_config_union() -> Any:
    """The discriminated union of every platform config model, tagged by ``type``."""
    models = {name: platform.config_model for name, platform in sorted(_PLATFORMS.items())}
    if len(models) == 1:
        # typing folds a one-member Union into the member, which takes no discriminator:
        # check the tag first, so an unknown type reads the same either way.
        return Annotated[next(iter(models.values())), BeforeValidator(_known_type)]
    members = tuple(Annotated[model, Tag(name)] for name, model in models.items())
    return Annotated[Union[members], Discriminator(_platform_tag)]  # noqa: UP007


def _known_type(value: Any) -> Any:
    if _platform_tag(value) is None:
        raise PydanticCustomError("union_tag_invalid", "unknown platform type")
    return value


def _platform_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, Mapping) else getattr(value, "type", None)
    return kind if isinstance(kind, str) and kind in _PLATFORMS else None


def build_platform(name: str, config: PlatformConfig) -> Platform:
    """The client of the platform called ``name``."""
    platform = _PLATFORMS.get(config.type)
    if platform is None:
        raise ValueError(f"unknown platform type {config.type!r}")
    return platform(name, config)


class PlatformClients:
    """One client per configured platform, built on first use, rebuilt when its config changes."""

    def __init__(self) -> None:
        self._clients: dict[str, Platform] = {}
        self._retired: list[Platform] = []

    def client(self, target: PlatformTarget) -> Platform:
        """The shared client of ``target.platform``."""
        held = self._clients.get(target.platform)
        if held is not None and held.config == target.config:
            return held
        if held is not None:
            # A reload changed the platform's config: checks built from the old config
            # may still be running on the old client; close it with the rest.
            self._retired.append(held)
        client = self._clients[target.platform] = build_platform(target.platform, target.config)
        return client

    async def close(self) -> None:
        clients = [*self._clients.values(), *self._retired]
        self._clients, self._retired = {}, []
        await asyncio.gather(*(client.close() for client in clients))
