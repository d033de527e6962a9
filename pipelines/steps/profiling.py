"""Wall time and peak memory of each step of a run, so that big data sets show where time and memory go."""

import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


def peak_rss_mb() -> float:
    """The most memory this process has held so far (resident set, MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@dataclass
class StepClock:
    """Seconds spent in each named step, and the process's peak memory when it ended."""

    seconds: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            self.peak_mb[name] = peak_rss_mb()

    def metrics(self) -> dict[str, float]:
        """As MLflow metrics under `system/` (after the test metrics in the UI): `system/step_seconds.<step>` and
        `system/peak_rss_mb.<step>`."""
        return {f"system/step_seconds.{name}": value for name, value in self.seconds.items()} | {
            f"system/peak_rss_mb.{name}": value for name, value in self.peak_mb.items()
        }

    def summary(self) -> str:
        """One line: each step's time and the peak memory after it."""
        return "  ".join(
            f"{name} {seconds:.1f} s ({self.peak_mb[name]:.0f} MiB)" for name, seconds in self.seconds.items()
        )
