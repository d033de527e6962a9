"""Known vulnerable versions stay out of the lock file. pip-audit cannot reach its database from these machines, so
the floors the advisories set are checked here; README's "Security model" says how to audit where it can."""

from pathlib import Path

import pytest
from packaging.version import Version

LOCK = Path(__file__).resolve().parents[3] / "requirements.lock"
# package → the lowest version the team's recorded advisories allow (see README, "Security model")
FLOORS = {"keras": "3.13.2", "bentoml": "1.4.39"}


def pins() -> dict[str, str]:
    found = {}
    for line in LOCK.read_text().splitlines():
        name, separator, version = line.strip().partition("==")
        if separator:
            found[name.lower().replace("_", "-")] = version
    return found


@pytest.mark.parametrize(("package", "floor"), sorted(FLOORS.items()))
def test_the_lock_keeps_known_security_floors(package: str, floor: str) -> None:
    pinned = pins()
    assert package in pinned, f"{package} is not pinned in {LOCK.name}"
    assert Version(pinned[package]) >= Version(floor), f"{package}=={pinned[package]} is below the floor {floor}"


def test_every_line_of_the_lock_is_an_exact_pin() -> None:
    lines = [line for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines and all("==" in line for line in lines)
    assert len(pins()) == len(lines)
