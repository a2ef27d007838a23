"""Tocsin: self-hosted monitoring, alerting and self-healing.

The pipeline, one subpackage or module per stage:

    config ─► scheduler ─► probes ─► results ─► store
                                        └─► alerting ─► channels   (later issues)
"""

__version__ = "0.1.0"
