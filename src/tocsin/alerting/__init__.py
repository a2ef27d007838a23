"""Alerting: rules over results → alerts (pending → firing → acked → resolved) → notifications.

Modules: ``conditions`` (the condition language), ``rules`` (alert rules from
config), ``flapping`` (Nagios flap detection), ``silences`` (silences and
maintenance windows), ``policies`` (what each severity gets), ``inhibition``
(which open alerts mute others), ``engine`` (the lifecycle and routing),
``outbox`` (durable delivery with retries), ``acks`` (signed acknowledgement links).
"""
