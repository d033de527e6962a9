"""The child processes neuroflow runs (servers): a port for one, and stopping one without leaving it behind."""

import contextlib
import signal
import socket
import subprocess


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


def run_until_stopped(command: list[str], env: dict[str, str]) -> int:
    """Run a server in the foreground until it ends. A stop request for this process (SIGTERM from a process manager,
    SIGHUP when the terminal goes) is passed on to it, and Ctrl+C reaches it with the terminal's process group;
    either way it is waited for, so it never outlives the command still holding its port."""
    process = subprocess.Popen(command, env=env)

    def pass_on(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    previous = {number: signal.signal(number, pass_on) for number in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    except KeyboardInterrupt:
        # The server normally got the same Ctrl+C and is shutting down; if it did not (a SIGINT sent to this process
        # alone), it is asked to stop after a grace period, then killed. Another Ctrl+C kills it at once.
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                return process.wait(timeout=10)
            return stop_process(process, grace=10)
        except KeyboardInterrupt:
            process.kill()
            return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def stopped_by_request(returncode: int) -> bool:
    """Whether a server's exit code means it was asked to stop (Ctrl+C, SIGTERM), not that it failed."""
    return returncode in (0, -signal.SIGINT, 128 + signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM)
