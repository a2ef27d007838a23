"""The running process: wires config → scheduler → probes → store → web, and reloads.

``Runtime`` owns the long-lived parts and their order of start and stop:
store (migrated) → result writer and deploy recorder → probes and scheduler → web server. Stop is
the reverse: stop the web server, stop launching checks and let those in flight
finish or time out, then flush every pending result to the store.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tocsin.alerting.acks import AckSigner
from tocsin.alerting.clock import Clock, SystemClock
from tocsin.alerting.engine import AlertEngine
from tocsin.alerting.pipeline import Alerting
from tocsin.config import ConfigError, LoadedConfig, Redactor, load_config
from tocsin.config.model import TocsinConfig
from tocsin.platforms.events import DeployRecorder
from tocsin.probes import CheckResult, CheckSpec, Probe, ProbeContext, build_probe
from tocsin.remediation.base import PlatformHandle
from tocsin.reports.delivery import SLAReporter
from tocsin.reports.health import HealthReporter
from tocsin.scheduler import Scheduler, run_bounded
from tocsin.store import ResultWriter, SchemaError, Store, StoreError, open_store
from tocsin.store.lock import StoreLock
from tocsin.store.retention import Pruner, Retention

if TYPE_CHECKING:
    from tocsin.web.server import WebServer

log = logging.getLogger("tocsin")

STORE_CLOSE_TIMEOUT = 30.0  # seconds to flush results at stop before giving them up

GIL_SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005
HEARTBEAT_REPLAY = 200  # latest pings per heartbeat replayed at start to rebuild its state


class LatestResults:
    """The newest result of every check, in memory, seeded from the store at start."""

    def __init__(self) -> None:
        self._by_check: dict[str, CheckResult] = {}

    def seed(self, results: dict[str, CheckResult]) -> None:
        self._by_check.update(results)

    def record(self, result: CheckResult) -> None:
        self._by_check[result.check] = result

    def get(self, check: str) -> CheckResult | None:
        return self._by_check.get(check)


def build_probes(specs: Iterable[CheckSpec[Any]], context: ProbeContext) -> list[Probe[Any]]:
    """A probe for every check whose type is built (planned types are skipped)."""
    probes = []
    for spec in specs:
        probe = build_probe(spec, context)
        if probe is not None:
            probes.append(probe)
    return probes


class Runtime:
    """One Tocsin process: ``await Runtime(path).run()`` until SIGTERM/SIGINT."""

    def __init__(self, config_path: Path | None = None,
                 on_redactor: Callable[[Redactor], None] | None = None,
                 clock: Clock | None = None) -> None:
        self.config_path = config_path
        self.on_redactor = on_redactor
        self.started_monotonic = time.monotonic()
        self.latest = LatestResults()
        self.loaded: LoadedConfig | None = None
        self.store: Store | None = None
        self.store_lock: StoreLock | None = None  # held while running on a SQLite file
        self.writer: ResultWriter | None = None
        self.deploys: DeployRecorder | None = None
        self.pruner: Pruner | None = None
        self.scheduler: Scheduler | None = None
        self.context = ProbeContext()
        self.clock: Clock = clock or SystemClock()
        self.alerting: Alerting | None = None
        self.web: WebServer | None = None
        self.health_reports: HealthReporter | None = None
        self.sla_reports: SLAReporter | None = None
        self.web_address: tuple[str, int] | None = None
        self._stop = asyncio.Event()
        self._reload_task: asyncio.Task[bool] | None = None
        self.ready = asyncio.Event()

    @property
    def checks(self) -> tuple[CheckSpec[Any], ...]:
        return self.loaded.checks if self.loaded else ()

    @property
    def engine(self) -> AlertEngine | None:
        return self.alerting.engine if self.alerting else None

    @property
    def ack_signer(self) -> AckSigner | None:
        return self.alerting.signer if self.alerting else None

    def require_store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the store is not open yet")
        return self.store

    def _adopt(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        if self.on_redactor is not None:
            self.on_redactor(loaded.redactor)

    async def run(self) -> None:
        """Start everything, serve until asked to stop, then stop in order.

        A failure while starting (the port is taken, the store cannot be opened)
        still stops whatever had started, flushing what was measured.
        """
        loaded = load_config(self.config_path)
        self._adopt(loaded)
        log.info("config: %s (%d checks)", loaded.source, len(loaded.checks))
        for name in loaded.skipped:
            log.warning("check %s: its type is not available in this version; skipped", name)
        try:
            self._install_signal_handlers()  # before the first log line a test may act on
            await self._start(loaded)
            self.ready.set()
            await self._stop.wait()
        finally:
            await self._shutdown()

    async def _start(self, loaded: LoadedConfig) -> None:
        from tocsin.web.server import WebServer  # the web stage is last in the pipeline

        # Before anything else: a second Tocsin on the same file must change nothing.
        self.store_lock = await asyncio.to_thread(StoreLock.acquire, loaded.config.storage)
        self.store = await asyncio.to_thread(open_store, loaded.config.storage)
        try:
            version = await asyncio.to_thread(self.store.migrate)
        except SchemaError:
            raise  # its message names the database already
        except StoreError as error:  # a corrupt file, a server that refuses us: name it
            raise type(error)(f"cannot use the store {self.store.url}: {error}") from error
        log.info("store: %s (schema v%d)", self.store.url, version)
        self.latest.seed(await asyncio.to_thread(self.store.latest_results))
        self.context.heartbeats.configure(loaded.checks, time.time())
        await asyncio.to_thread(self._restore_heartbeats, self.store)

        if loaded.config.web.enabled:  # bind before checks start: a taken port fails fast
            self.web = WebServer(self, loaded.config.web.host, loaded.config.web.port)
            self.web_address = await self.web.start()
            log.info("web: http://%s:%d", *self.web_address)

        settings = loaded.config.scheduler
        self.writer = ResultWriter(self.store, max_pending=settings.store_buffer,
                                   report_unavailable=self._store_unavailable)
        self.writer.start()
        self.deploys = DeployRecorder(self.store)
        self.deploys.start()
        kept = loaded.config.retention
        self.pruner = Pruner(self.store, Retention(kept.raw, kept.rollups_5m, kept.rollups_1h),
                             clock=self.clock.now)
        self.pruner.start()
        self.scheduler = Scheduler(
            [self.writer.submit, self.deploys.submit, self.latest.record],
            concurrency=settings.concurrency, jitter=settings.jitter,
        )
        self.alerting = Alerting(loaded, self.store, self.clock, recheck=self.scheduler.run_soon,
                                 base_url=self._base_url(loaded),
                                 probe_recheck=self._recheck, platform_for=self._platform_for)
        self.scheduler.add_sink(self.alerting.engine.observe)
        await self.alerting.start()
        self.context.store = self.store
        self.context.databases = loaded.config.databases
        self.scheduler.set_probes(build_probes(loaded.checks, self.context))
        self.health_reports = HealthReporter(self.store, loaded.config.reports.health,
                                             lambda: self.checks, self.latest.get)
        self.health_reports.start()
        self.sla_reports = SLAReporter(self.store, self._config, lambda: self.checks,
                                       self.alerting.sender.wake)
        self.sla_reports.start()
        # Everything built so far lives as long as the process: keep it out of the
        # cyclic collector, whose full passes over it stalled the loop ~100 ms
        # (p99 schedule lag 88 ms → 4 ms at 10,000 checks with alert rules).
        gc.freeze()
        # The event loop shares the GIL with the store's writer thread; by default a
        # thread waits up to 5 ms for it, which showed as schedule lag (p99 16 → 8 ms
        # at 10,000 checks with 1 ms).
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self.scheduler.start()

    def _config(self) -> TocsinConfig:
        assert self.loaded is not None
        return self.loaded.config

    def _restore_heartbeats(self, store: Store) -> None:
        """Rebuild each heartbeat's state from its latest stored pings."""
        book = self.context.heartbeats
        for name in book.names():
            book.restore(name, reversed(store.list_pings(name, limit=HEARTBEAT_REPLAY)))

    def _store_unavailable(self, unavailable: bool, why: str) -> None:
        """The result writer says the store refuses writes (or takes them again)."""
        if self.alerting is not None:
            self.alerting.store_unavailable(unavailable, why)

    async def _recheck(self, check: str) -> CheckResult:
        """A real run of ``check``'s probe now, bounded by its timeout (a remediation verifies)."""
        probe = self.scheduler.probe(check) if self.scheduler is not None else None
        if probe is None:
            raise LookupError(f"check {check!r} is not scheduled")
        return await run_bounded(probe)

    def _platform_for(self, check: str) -> PlatformHandle | None:
        """The platform service ``check`` watches, through the shared platform clients."""
        spec = next((spec for spec in self.checks if spec.name == check), None)
        if spec is None or spec.platform is None:
            return None
        return PlatformHandle(self.context.platforms.client(spec.platform),
                              spec.platform.service_id)

    def _base_url(self, loaded: LoadedConfig) -> str:
        """What notifications link to: the configured URL, else where the web server listens."""
        if loaded.config.alerting.base_url is None and self.web_address is not None:
            host, port = self.web_address
            return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
        return loaded.config.base_url

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)

    def request_stop(self) -> None:
        log.info("stopping: finishing checks in flight and flushing results")
        self._stop.set()

    def request_reload(self) -> None:
        if self._reload_task is None or self._reload_task.done():
            self._reload_task = asyncio.create_task(self.reload())

    async def reload(self) -> bool:
        """Load the config again; adopt it if valid, keep the last good one if not."""
        try:
            loaded = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as error:
            log.error("config reload refused; keeping the last good config:\n%s", error)
            return False
        assert self.scheduler is not None and self.loaded is not None
        if loaded.config.storage != self.loaded.config.storage:
            log.warning("storage changed in config; it takes effect at the next restart")
        if loaded.config.web != self.loaded.config.web:
            log.warning("web settings changed in config; they take effect at the next restart")
        self._adopt(loaded)
        self.context.heartbeats.configure(loaded.checks, time.time())
        self.context.databases = loaded.config.databases
        self.context.metrics.forget_except({spec.name for spec in loaded.checks})
        self.scheduler.set_probes(build_probes(loaded.checks, self.context))
        if self.alerting is not None:
            self.alerting.reconfigure(loaded, loaded.checks)
        log.info("config reloaded: %s (%d checks)", loaded.source, len(loaded.checks))
        return True

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if self.web is not None:
            await self.web.stop()
        if self.scheduler is not None:
            await self.scheduler.stop()
        await self.context.close()
        for reporter in (self.health_reports, self.sla_reports):
            if reporter is not None:
                await reporter.stop()
        if self.alerting is not None:
            await self.alerting.stop()
        if self.deploys is not None:
            await self.deploys.close()
        if self.pruner is not None:
            await self.pruner.close()
        if self.writer is not None:
            # A store that stays down must not keep the process from stopping.
            await self.writer.close(abandon_after=STORE_CLOSE_TIMEOUT)
            log.info("results flushed: %d written, %d dropped",
                     self.writer.written, self.writer.dropped)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        if self.store_lock is not None:
            self.store_lock.release()
        log.info("stopped")
