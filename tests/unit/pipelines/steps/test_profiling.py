import time

import psutil

from neuroflow.pipelines.steps.profiling import StepClock, peak_rss_mb


def test_each_step_gets_its_time_and_the_peak_memory_after_it() -> None:
    clock = StepClock()
    with clock.step("small"):
        time.sleep(0.05)
    with clock.step("big"):
        block = bytearray(64 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # touch every page so it is resident
        resident_now = psutil.Process().memory_info().rss / 2**20
    assert clock.seconds["small"] >= 0.05 and clock.seconds["big"] < clock.seconds["small"] + 1
    # the peak can only grow, and it covers what was resident while the step held 64 MiB
    assert clock.peak_mb["big"] >= max(clock.peak_mb["small"], resident_now - 1)
    assert peak_rss_mb() >= clock.peak_mb["big"]
    metrics = clock.metrics()
    assert set(metrics) == {
        "system/step_seconds.small",
        "system/step_seconds.big",
        "system/peak_rss_mb.small",
        "system/peak_rss_mb.big",
    }
    assert clock.summary().startswith("small 0.1 s (") or clock.summary().startswith("small 0.0 s (")
