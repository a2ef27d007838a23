"""``tocsin.health``: a ``/health`` endpoint for the apps Tocsin watches.

Not part of Tocsin's pipeline: a small library an app imports to answer its own
health endpoint (database, dependencies, disk; 503 when a critical one fails),
in the shape Tocsin's ``http`` check understands::

    from fastapi import FastAPI
    from tocsin.health import HealthRegistry, database, disk_space, http_dependency

    health = HealthRegistry(version="1.4.2")
    health.add("database", database(engine), timeout=2)
    health.add("payments", http_dependency("https://payments.internal/ping"), critical=False)
    health.add("disk", disk_space("/", max_used_percent=90), critical=False)

    app = FastAPI()
    app.include_router(health.router("/health"))

The answer::

    {"status": "degraded",
     "checks": {"database": {"status": "healthy", "latency_ms": 1.8, "critical": true},
                "payments": {"status": "unhealthy", "message": "timed out after 2 s", ...},
                ...},
     "version": "1.4.2", "timestamp": "2026-10-01T08:00:00.000Z"}

``healthy`` and ``degraded`` (only non-critical checks fail) answer 200,
``unhealthy`` 503. Importing this package imports no framework or driver:
FastAPI, Starlette, SQLAlchemy, asyncpg and aiohttp are imported by the
adapter or check that uses them, when it is built or first run.
"""

from tocsin.health.checks import disk_space, http_dependency
from tocsin.health.core import (
    CheckFunction,
    CheckReport,
    HealthRegistry,
    HealthReport,
    HealthStatus,
    Unhealthy,
)
from tocsin.health.database import database

__all__ = [
    "CheckFunction",
    "CheckReport",
    "HealthRegistry",
    "HealthReport",
    "HealthStatus",
    "Unhealthy",
    "database",
    "disk_space",
    "http_dependency",
]
