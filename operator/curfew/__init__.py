"""Curfew: one session-timeout policy, enforced by every service in a Kubernetes cluster."""

__version__ = "0.1.0"
