"""Compliance profiles: the session-timeout limits that standards set, and checks against them.

Non-compliance is reported (the ``Compliant`` condition, ``curfew validate``), never a parse
error: a policy may be deliberately looser than a profile while a team works towards it.
Sources are cited in ``docs/compliance.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from curfew.api.durations import HOUR, MINUTE, Duration
from curfew.api.policy import ComplianceProfileName, SessionPolicy, Timeouts


@dataclass(frozen=True)
class Profile:
    """The limits one standard sets on session lifetimes."""

    name: ComplianceProfileName
    title: str
    source: str
    max_idle: Duration | None
    max_absolute: Duration | None


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("pci-dss-4.0", "PCI DSS v4.0", "PCI DSS v4.0 requirement 8.2.8",
                Duration(15 * MINUTE), None),
        Profile("nist-800-63b-aal2", "NIST SP 800-63B-4, AAL2", "NIST SP 800-63B-4 section 2.2.3",
                Duration(1 * HOUR), Duration(24 * HOUR)),
        Profile("nist-800-63b-aal3", "NIST SP 800-63B-4, AAL3", "NIST SP 800-63B-4 section 2.3.3",
                Duration(15 * MINUTE), Duration(12 * HOUR)),
        Profile("owasp-high-value", "OWASP, high-value applications",
                "OWASP Session Management Cheat Sheet, Session Expiration",
                Duration(5 * MINUTE), Duration(8 * HOUR)),
    )
}


@dataclass(frozen=True)
class Violation:
    """One limit of one profile that a policy exceeds."""

    profile: str
    field: str
    limit: Duration
    actual: Duration

    def __str__(self) -> str:
        return f"{self.profile}: {self.field} {self.actual} exceeds {self.limit}"


def evaluate(timeouts: Timeouts, profiles: Sequence[str]) -> list[Violation]:
    """Every limit of ``profiles`` that ``timeouts`` exceeds, in profile order."""
    out: list[Violation] = []
    for name in profiles:
        profile = PROFILES[name]
        if profile.max_idle is not None and timeouts.idle > profile.max_idle:
            out.append(Violation(name, "timeouts.idle", profile.max_idle, timeouts.idle))
        if profile.max_absolute is not None and timeouts.absolute > profile.max_absolute:
            out.append(
                Violation(name, "timeouts.absolute", profile.max_absolute, timeouts.absolute)
            )
    return out


def check_compliance(policy: SessionPolicy) -> list[Violation]:
    """Every limit of the policy's own ``compliance.profiles`` that its timeouts exceed."""
    return evaluate(policy.spec.timeouts, policy.spec.compliance.profiles)
