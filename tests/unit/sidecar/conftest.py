"""Builders of unified configs for the sidecar's unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from curfew.api.config import UnifiedConfig
from curfew.sidecar.policy import SidecarPolicy, build_policy
from fixtures.policy_docs import policy_doc


@pytest.fixture
def make_policy() -> Callable[..., SidecarPolicy]:
    def make(**sections: Any) -> SidecarPolicy:
        return build_policy(UnifiedConfig.model_validate(policy_doc(**sections)).sealed())

    return make
