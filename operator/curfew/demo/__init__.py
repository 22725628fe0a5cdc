"""``curfew demo``: a sample web app behind the enforcement sidecar, on this machine.

A process like the sidecar it embeds: it may use ``curfew.sidecar`` and ``curfew.sessions``,
never the Kubernetes API. Modules: ``app`` (the sample app and its login page), ``memory`` (the
embedded store used when no Redis is at hand), ``main`` (store choice, wiring, the run loop).
"""
