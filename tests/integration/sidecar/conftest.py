"""Fixtures of the sidecar's integration tests (defined in ``sidecar_harness``)."""

import logging

import pytest
from sidecar_harness import http, own_redis, start_sidecar, upstream

__all__ = ["http", "own_redis", "start_sidecar", "upstream"]


@pytest.fixture(autouse=True)
def _capture_every_log_line(caplog: pytest.LogCaptureFixture) -> None:
    """Capture DEBUG and up from every logger: tests read audit events and scan all lines."""
    caplog.set_level(logging.DEBUG)
