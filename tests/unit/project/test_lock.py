"""The locks agree with pyproject.toml, and this environment is the lock.

``requirements/lock.txt`` (everything: runtime, test, dev, build backend) and
``requirements/runtime.txt`` (what the image installs) are what every machine installs from.
They are only worth something if they say what pyproject.toml declares: a dependency missing
from a lock, or pinned outside its declared range, would install something nobody reviewed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
LOCK = ROOT / "requirements" / "lock.txt"
RUNTIME = ROOT / "requirements" / "runtime.txt"
BUILD_IN = ROOT / "requirements" / "build.in"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: int


def read_lock(path: Path) -> dict[str, Pin]:
    """Every pin of a hashed requirements file, by canonical name."""
    pins: dict[str, Pin] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            name, version, marker = match.groups()
            current = canonicalize_name(name)
            assert current not in pins, f"{path.name}: {name} pinned twice"
            pins[current] = Pin(current, Version(version), Marker(marker) if marker else None, 0)
        elif line.strip().startswith("--hash=sha256:") and current is not None:
            pin = pins[current]
            pins[current] = Pin(pin.name, pin.version, pin.marker, pin.hashes + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"{path.name}: unexpected line {line!r}")
    return pins


def declared(*, extras: bool) -> list[Requirement]:
    """The requirements pyproject.toml declares (and the build backend), optionally extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    if extras:
        for group in project["optional-dependencies"].values():
            lines.extend(group)
    lines.extend(
        line for line in BUILD_IN.read_text().splitlines() if line and not line.startswith("#")
    )
    return [Requirement(line) for line in lines]


def lock_problems(pins: dict[str, Pin], requirements: list[Requirement], lock: str) -> list[str]:
    """Each declared requirement missing from ``pins`` or pinned outside its range."""
    problems = []
    for requirement in requirements:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            problems.append(f"{requirement} is declared but not in {lock}")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{lock} pins {pin.name}=={pin.version}, outside {requirement}")
    return problems


@pytest.mark.parametrize(
    ("lock", "extras"), [(LOCK, True), (RUNTIME, False)], ids=["lock.txt", "runtime.txt"]
)
def test_every_declared_dependency_is_pinned_inside_its_declared_range(
    lock: Path, extras: bool
) -> None:
    problems = lock_problems(read_lock(lock), declared(extras=extras), lock.name)
    assert problems == [], "run `make lock`:\n" + "\n".join(problems)


def test_a_dependency_missing_from_the_lock_or_pinned_outside_its_range_is_reported(
    tmp_path: Path,
) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("Redis==7.0.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    requirements = [Requirement("redis[hiredis]>=8.2,<9"), Requirement("aiohttp>=3.9,<4")]
    assert lock_problems(read_lock(lock), requirements, "lock.txt") == [
        "lock.txt pins redis==7.0.0, outside redis[hiredis]<9,>=8.2",
        "aiohttp<4,>=3.9 is declared but not in lock.txt",
    ]


@pytest.mark.parametrize("lock", [LOCK, RUNTIME], ids=["lock.txt", "runtime.txt"])
def test_every_pin_carries_hashes(lock: Path) -> None:
    assert [name for name, pin in read_lock(lock).items() if pin.hashes == 0] == []


def test_the_runtime_lock_pins_the_same_versions_as_the_full_lock() -> None:
    full = read_lock(LOCK)
    runtime = read_lock(RUNTIME)
    assert {n: p.version for n, p in runtime.items()} == {
        n: full[n].version for n in runtime if n in full
    }
    assert set(runtime) <= set(full)


def test_this_environment_is_the_lock() -> None:
    # What the tests just ran on is what CI and every fresh machine install: a package
    # installed by hand, or a lock edited without reinstalling, shows here.
    wrong = []
    for pin in read_lock(LOCK).values():
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        try:
            installed = Version(metadata.version(pin.name))
        except metadata.PackageNotFoundError:
            wrong.append(f"{pin.name}=={pin.version} is not installed")
            continue
        if installed != pin.version:
            wrong.append(f"{pin.name} {installed} is installed, the lock says {pin.version}")
    assert wrong == [], "reinstall with `make setup` (or `make clean setup`):\n" + "\n".join(wrong)
