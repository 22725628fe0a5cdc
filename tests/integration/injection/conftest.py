"""The ``webhook`` fixture: the injection webhook running against kmock (see webhook_harness)."""

from webhook_harness import webhook

__all__ = ["webhook"]
