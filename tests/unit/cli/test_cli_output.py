"""What the command shows and how it leaves: the console filter, and an exit that skips module teardown only."""

import logging
import subprocess
import sys

from neuroflow.cli.output import ConsoleFilter

EXIT_PROBE = """
import atexit, threading, time
from neuroflow.cli.output import exit_with, install_fast_exit

class Teardown:
    def __del__(self):
        print("module teardown ran", flush=True)

kept = Teardown()  # module globals are torn down at an ordinary exit, printing this
install_fast_exit()
atexit.register(lambda: print("a later exit handler ran", flush=True))
threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished", flush=True))).start()
print("result", end="")  # left in the buffer: the exit must flush it
exit_with({code!r})
"""


def run_probe(code: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", EXIT_PROBE.format(code=code)], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_fast_exit_keeps_threads_handlers_and_the_code_but_skips_teardown() -> None:
    done = run_probe(3)
    assert done.returncode == 3
    assert done.stdout.startswith("result")  # flushed
    assert "thread finished" in done.stdout and "a later exit handler ran" in done.stdout
    assert done.stdout.index("thread finished") < done.stdout.index("a later exit handler ran")
    assert "module teardown ran" not in done.stdout


def test_a_text_exit_code_is_printed_and_exits_1() -> None:
    done = run_probe("stopped: bad thing")
    assert done.returncode == 1 and "stopped: bad thing" in done.stderr
    assert run_probe(None).returncode == 0


def record(name: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, "message", None, None)
    made.__dict__.update(extra)
    return made


def test_the_console_keeps_own_lines_and_warnings_and_drops_library_chatter() -> None:
    quiet = ConsoleFilter(own_only=True, hide_epochs=False)
    assert quiet.filter(record("neuroflow.pipelines.steps.data"))
    assert quiet.filter(record("neuroflow.pipelines.steps.training", epoch=1))
    assert not quiet.filter(record("prefect.task_runs"))
    assert not quiet.filter(record("mlflow.store.db.utils"))
    assert quiet.filter(record("prefect.flow_runs", logging.WARNING))
    live = ConsoleFilter(own_only=False, hide_epochs=True)
    assert not live.filter(record("neuroflow.pipelines.steps.training", epoch=1))
    assert live.filter(record("prefect.task_runs"))
