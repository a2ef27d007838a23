"""A report job: one background task that a runtime starts and stops."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod


class ReportJob(ABC):
    """Runs :meth:`_run` as a named task between :meth:`start` and :meth:`stop`."""

    task_name = "tocsin-report"
    _task: asyncio.Task[None] | None = None

    @property
    @abstractmethod
    def enabled(self) -> bool:
        """Whether the config asks for this job at all."""

    @abstractmethod
    async def _run(self) -> None:
        """The job's loop; cancelled at stop."""

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
