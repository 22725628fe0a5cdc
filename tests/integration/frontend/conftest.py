"""Fixtures of the browser tests (defined in ``browser_harness``)."""

from browser_harness import browser, demo, shoot

__all__ = ["browser", "demo", "shoot"]
