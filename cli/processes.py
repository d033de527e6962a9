"""The child processes neuroflow runs (servers): a port for one, and stopping one without leaving it behind."""

import os
import signal
import socket
import subprocess
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes], grace: float) -> int:
    """Ask a process to stop (SIGTERM), kill it if it is still there after `grace` seconds; returns its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def signal_group(process: subprocess.Popen[bytes], signum: int) -> bool:
    """Send `signum` to the process group `process` leads; False when nothing of it is left."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def run_until_stopped(command: list[str], env: dict[str, str], grace: float = 10.0) -> int:
    """Run a server in the foreground, in a process group of its own, until it ends; returns its exit code.

    Ctrl+C, SIGTERM (a process manager) and SIGHUP (the terminal went away) are passed on to the whole group: the
    server and whatever it started (`mlflow ui` runs uvicorn, BentoML its workers). A group still there `grace`
    seconds after the first of them is killed, and nothing of it outlives this call, so no port stays taken.
    """
    process = subprocess.Popen(command, env=env, start_new_session=True)
    asked: list[float] = []

    def pass_on(signum: int, _frame: object) -> None:
        asked.append(time.monotonic())
        signal_group(process, signum)

    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {number: signal.signal(number, pass_on) for number in stop_signals}
    try:
        while True:
            try:
                return process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if asked and time.monotonic() - asked[0] > grace:
                    signal_group(process, signal.SIGKILL)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        end_group(process, grace)


def end_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """Stop what is left of a finished server's process group (children it did not stop): SIGTERM, then SIGKILL."""
    if not signal_group(process, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not signal_group(process, 0):
            return
        time.sleep(0.1)
    signal_group(process, signal.SIGKILL)


def stopped_by_request(returncode: int) -> bool:
    """Whether a server's exit code means it was asked to stop (Ctrl+C, SIGTERM), not that it failed."""
    return returncode in (0, -signal.SIGINT, 128 + signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM)
