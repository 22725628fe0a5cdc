"""Defaults that several parts of Curfew must agree on, in one place.

The chart's values and the library chart's template name the same image; tests compare them
with these constants.
"""

from typing import Final

from curfew import __version__

IMAGE_REPOSITORY: Final = "curfew"
"""The image's default repository: what `docker build -t curfew:<version> .` makes and the
chart's ``image.repository`` defaults to."""

IMAGE: Final = f"{IMAGE_REPOSITORY}:{__version__}"
"""The one default image reference: the operator, the injected sidecar and the purge jobs."""
