"""Ready-made health checks for what an app depends on besides its database.

- :func:`http_dependency`: another service answers with an expected status;
- :func:`disk_space`: a filesystem has room left (``shutil.disk_usage``).

A failure raises :class:`~tocsin.health.core.Unhealthy` with a short message
that never holds the URL (its query or userinfo may carry a key).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Collection, Mapping

from tocsin.health.core import CheckFunction, Unhealthy
from tocsin.health.threads import BlockingCall

DEFAULT_STATUSES = range(200, 400)


def http_dependency(
    url: str,
    *,
    expect_status: int | Collection[int] = DEFAULT_STATUSES,
    timeout: float | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
) -> CheckFunction:
    """A check that ``method url`` answers a status in ``expect_status`` (200-399).

    ``timeout`` bounds the request; without it the check's own timeout does.
    aiohttp is imported at the first run.
    """
    if not url.lower().startswith(("http://", "https://")):
        raise ValueError("http_dependency(): the URL must start with http:// or https://")
    statuses = range(expect_status, expect_status + 1) if isinstance(expect_status, int) \
        else expect_status
    request_headers = dict(headers or {})

    async def http_check() -> None:
        import aiohttp

        client_timeout = aiohttp.ClientTimeout(total=timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=client_timeout) as session,
                session.request(method, url, headers=request_headers) as response,
            ):
                status = response.status
        except aiohttp.ClientConnectorError as exc:
            raise Unhealthy(f"cannot connect: {_os_error(exc.os_error)}") from None
        except TimeoutError:
            raise Unhealthy(f"timed out after {timeout:g} s" if timeout else "timed out") from None
        except aiohttp.ClientError as exc:
            # str() of most aiohttp errors holds the URL: the type says enough.
            raise Unhealthy(f"request failed: {type(exc).__name__}") from None
        if status not in statuses:
            raise Unhealthy(f"status {status}")

    return http_check


def _os_error(error: OSError) -> str:
    if error.errno is not None and error.errno in errno.errorcode:
        return os.strerror(error.errno).lower()
    return type(error).__name__


def disk_space(
    path: str | os.PathLike[str] = "/",
    *,
    min_free_bytes: int | None = None,
    max_used_percent: float | None = None,
) -> CheckFunction:
    """A check that the filesystem holding ``path`` has ``min_free_bytes`` free and at most
    ``max_used_percent`` used (as ``df`` counts it); with neither, at most 90 % used.

    Healthy, it notes the use (``"41.2% used, 18.3 GiB free"``).
    """
    if min_free_bytes is None and max_used_percent is None:
        max_used_percent = 90.0
    if min_free_bytes is not None and min_free_bytes < 0:
        raise ValueError("disk_space(): min_free_bytes must be 0 or more")
    if max_used_percent is not None and not 0 <= max_used_percent <= 100:
        raise ValueError("disk_space(): max_used_percent must be within 0-100")
    location = os.fspath(path)
    # statvfs is quick, but on a hung network mount it blocks: keep it off the event loop.
    usage_of = BlockingCall(lambda: shutil.disk_usage(location))

    async def disk_check() -> str:
        usage = await usage_of()
        # As df: used against what a user can fill (root's reserved blocks left out).
        fillable = usage.used + usage.free
        used_percent = usage.used / fillable * 100 if fillable else 100.0
        state = f"{used_percent:.1f}% used, {format_bytes(usage.free)} free"
        if max_used_percent is not None and used_percent > max_used_percent:
            raise Unhealthy(f"{state}: more than {max_used_percent:g}% used")
        if min_free_bytes is not None and usage.free < min_free_bytes:
            raise Unhealthy(f"{state}: less than {format_bytes(min_free_bytes)} free")
        return state

    return disk_check


def format_bytes(size: int) -> str:
    """``19650000000`` → ``18.3 GiB``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
