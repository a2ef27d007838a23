"""The web stage: Tocsin's own /health and the JSON API (dashboard and status page later)."""
