"""Fixtures of the observability tests: the sidecar's harness (real sidecars, real Redis)."""

from tests.integration.sidecar.sidecar_harness import http, own_redis, start_sidecar, upstream

__all__ = ["http", "own_redis", "start_sidecar", "upstream"]
