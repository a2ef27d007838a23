"""The alerting stage assembled: engine + state writer + outbox sender + a ticker.

Built from a loaded config and a migrated store; restores the open alerts,
incidents and silences a previous process left, so a restart neither
re-pages nor forgets a resolution; and rebuilds its channels on reload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tocsin.alerting.acks import AckSigner
from tocsin.alerting.clock import Clock
from tocsin.alerting.engine import AlertEngine, EngineSettings, Recheck
from tocsin.alerting.model import AlertState, Severity
from tocsin.alerting.outbox import AlertingWriter, ChannelHealth, OutboxSender
from tocsin.channels import Channel, ChannelConfig, build_channel
from tocsin.config import LoadedConfig, TocsinConfig
from tocsin.store import Store

if TYPE_CHECKING:
    from tocsin.remediation.orchestrator import PlatformFor, Remediator
    from tocsin.remediation.orchestrator import Recheck as ProbeRecheck

log = logging.getLogger(__name__)

TICK = 1.0  # seconds between checks of what time alone decides (repeats, escalation, …)
STORE_ALERT = "tocsin:store:unavailable"  # the fingerprint of Tocsin's own store alert


def build_channels(configs: Mapping[str, ChannelConfig]) -> dict[str, Channel[Any]]:
    """One channel per config; a fallback without addresses takes those it stands in for."""
    inherited: dict[str, dict[str, Any]] = {}
    for config in configs.values():
        fallback = config.fallback
        if fallback is None or fallback not in configs or fallback in inherited:
            continue
        addresses = {key: value for key in ("from_", "to")
                     if (value := getattr(config, key, None))}
        if addresses:
            inherited[fallback] = addresses
    channels = {}
    for name, config in configs.items():
        update = {key: value for key, value in inherited.get(name, {}).items()
                  if not getattr(config, key, None)}
        channels[name] = build_channel(name, config.model_copy(update=update) if update
                                       else config)
    return channels


def ack_signer(config: TocsinConfig, base_url: str) -> AckSigner | None:
    secret = config.alerting.ack_secret
    return AckSigner(secret, base_url) if secret else None


def engine_settings(config: TocsinConfig, signer: AckSigner | None, clock: Clock,
                    base_url: str, channels: Mapping[str, Channel[Any]]) -> EngineSettings:
    link = (lambda fingerprint: signer.link(fingerprint, clock.now())) if signer else None
    return EngineSettings(
        policies=config.policies, channels=tuple(config.channels),
        inhibit=tuple(config.inhibit), maintenance=tuple(config.maintenance),
        base_url=base_url, ack_link=link,
        ack_channels=tuple(name for name, channel in channels.items()
                           if channel.receives_acknowledgements),
    )


class Alerting:
    """The running alerting stage of one process."""

    def __init__(self, loaded: LoadedConfig, store: Store, clock: Clock,
                 recheck: Recheck | None = None, base_url: str | None = None, *,
                 probe_recheck: ProbeRecheck | None = None,
                 platform_for: PlatformFor | None = None) -> None:
        """``base_url`` is what notifications link to (default: from the config).

        With ``probe_recheck`` (check name → a fresh result) and policies under
        ``remediation:``, a :class:`Remediator` acts on alerts whose rules name one;
        ``platform_for`` gives a check's platform service to platform actions.
        """
        self.store = store
        self.clock = clock
        self.base_url = base_url or loaded.config.base_url
        self.signer = ack_signer(loaded.config, self.base_url)
        self.sender = OutboxSender(store, build_channels(loaded.config.channels), clock,
                                   on_health=self._channel_health_changed)
        self.writer = AlertingWriter(store, on_saved=self.sender.wake,
                                     send_unsaved=self.sender.send_unsaved)
        self.engine = AlertEngine(
            engine_settings(loaded.config, self.signer, clock, self.base_url,
                            self.sender.channels),
            clock, self.writer.submit, recheck)
        self.engine.configure(self.engine.settings, loaded.checks)
        self._ticker: asyncio.Task[None] | None = None
        self.remediator: Remediator | None = None
        if probe_recheck is not None and loaded.config.remediation.policies:
            self.remediator = self._build_remediator(loaded, probe_recheck, platform_for)

    def _build_remediator(self, loaded: LoadedConfig, probe_recheck: ProbeRecheck,
                          platform_for: PlatformFor | None) -> Remediator:
        from tocsin.remediation.orchestrator import Remediator

        engine = self.engine
        remediator = Remediator(
            self.store, loaded.config.remediation, self.clock,
            platform_for=platform_for or (lambda check: None), recheck=probe_recheck,
            notify=lambda kind, fingerprint, text, escalate: engine.notify_remediation(
                fingerprint, kind, text, escalate=escalate),
            current=engine.alerts.get)
        engine.on_firing = remediator.on_firing
        return remediator

    def _channel_health_changed(self, name: str, health: ChannelHealth) -> None:
        """A channel that keeps failing raises its own P2 alert, through the other channels."""
        self.engine.report_condition(
            f"tocsin:channel:{name}:failing", health.failing, severity=Severity.P2,
            service="tocsin", check=f"channel:{name}",
            summary=f"notification channel {name} is failing",
            message=health.last_error or "", avoid_channels=[name])

    def store_unavailable(self, unavailable: bool, why: str) -> None:
        """The store refuses writes: a P2 alert, sent before the store can hold it.

        Its notifications cannot wait in the outbox, which is in the store: the
        state writer sends them straight through the channels while it keeps
        retrying the save (see :class:`AlertingWriter`).
        """
        self.engine.report_condition(
            STORE_ALERT, unavailable, severity=Severity.P2, service="tocsin", check="store",
            summary="the store is unavailable: results are kept in memory",
            message=why)

    async def start(self) -> None:
        """Restore what a previous process left, then start writing, sending and ticking."""
        open_states = [AlertState.PENDING, AlertState.FIRING, AlertState.ACKNOWLEDGED]
        alerts = await asyncio.to_thread(self.store.load_alerts, open_states)
        incidents = await asyncio.to_thread(self.store.load_incidents, True)
        silences = await asyncio.to_thread(self.store.list_silences, self.clock.now())
        self.engine.restore(alerts, incidents, silences)
        await self._restore_digests()
        if alerts:
            log.info("alerting: restored %d open alerts and %d incidents",
                     len(alerts), len(incidents))
        self.writer.start()
        self.sender.start()
        self._ticker = asyncio.create_task(self._tick_forever(), name="tocsin-alerting-tick")
        if self.remediator is not None:
            await self.remediator.resume()

    async def _restore_digests(self) -> None:
        now = self.clock.now()
        policies = self.engine.settings.policies
        starts = [policies.for_severity(s).previous_digest(now) for s in Severity
                  if policies.for_severity(s).digest is not None]
        if not starts:
            return
        events = await asyncio.to_thread(self.store.alert_events, None, min(starts), 100_000)
        fingerprints = {event.fingerprint for event in events} - set(self.engine.alerts)
        for fingerprint in fingerprints:  # resolved since: not among the open alerts restored
            alert = await asyncio.to_thread(self.store.get_alert, fingerprint)
            if alert is not None:
                self.engine.alerts[fingerprint] = alert
        self.engine.restore_digests(events)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                self.engine.tick()
            except Exception:  # a bug here must not stop repeats and escalations for good
                log.exception("alerting tick failed")

    def reconfigure(self, loaded: LoadedConfig, checks: Iterable[Any]) -> None:
        """Adopt a reloaded config: rules, policies and channels; alert states are kept."""
        self.signer = ack_signer(loaded.config, self.base_url)
        old = self.sender.channels
        self.sender.channels = build_channels(loaded.config.channels)
        self.engine.configure(
            engine_settings(loaded.config, self.signer, self.clock, self.base_url,
                            self.sender.channels), checks)
        for channel in old.values():
            asyncio.get_running_loop().create_task(channel.close())
        if self.remediator is not None:
            self.remediator.settings = loaded.config.remediation

    async def stop(self) -> None:
        """Save every pending state change and send what is due before returning."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        if self.remediator is not None:
            await self.remediator.close()  # an unfinished attempt resumes at the next start
        await self.writer.close()
        try:
            await asyncio.wait_for(self.sender.deliver_due(), 10)
        except TimeoutError:
            log.warning("alerting: notifications still pending at stop; they go out at restart")
        await self.sender.close()
