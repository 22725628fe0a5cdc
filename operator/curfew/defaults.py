"""Defaults that several parts of Curfew must agree on, in one place.

Render (the purge jobs, the injected sidecar), the injection webhook's settings, the chart's
``injection.sidecar`` values and the library chart's ``_sidecar.tpl`` all name these; tests compare
the charts with them, and the library chart's container with ``build_sidecar_container``.
"""

from typing import Final

from curfew import __version__

IMAGE_REPOSITORY: Final = "curfew"
"""The image's default repository: what `docker build -t curfew:<version> .` makes and the
chart's ``image.repository`` defaults to."""

IMAGE: Final = f"{IMAGE_REPOSITORY}:{__version__}"
"""The one default image reference: the operator, the injected sidecar and the purge jobs."""

PULL_POLICY: Final = "IfNotPresent"
"""imagePullPolicy of the injected sidecar and of the purge jobs."""

RUN_AS_USER: Final = 65532
"""Non-root uid (and gid) of the sidecar and the purge jobs: the image's ``nonroot`` user."""

SIDECAR_OPS_PORT: Final = 9469
"""Port of the sidecar's /healthz, /readyz and /metrics."""

SIDECAR_LISTEN_PORT: Final = 8080
"""Port the library chart's sidecar serves the app's traffic on (an injected sidecar takes over
the app's own port instead)."""


def build_sidecar_resources() -> dict[str, dict[str, str | int | float]]:
    """The sidecar's resources: small requests and a memory limit (a new dict each call, as
    callers may change theirs)."""
    return {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
