"""The docker-compose stack, started as local processes with the commands and environment the compose file gives.

There is no container engine here, so compose's own parser (`docker-compose config`) resolves the file with a .env,
and each service's command, environment, working directory and healthcheck run on this machine. What compose's
network would do is done by rewriting addresses: a service name and its container port (`mlflow:5000`) become
127.0.0.1 and a free port, `0.0.0.0` becomes 127.0.0.1, and the folders the image and the volumes provide (`/app`,
`/mlflow`, `/data`) become the checkout and folders of a temporary directory.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.utils.processes import free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]
# Where each service listens inside its container (the compose file's `--port` / port mappings).
CONTAINER_PORTS = {"mlflow": 5000, "prefect-server": 4200, "service": 3000, "prefect-worker": 8080, "postgres": 5432}
# The Dockerfile's ENV that the compose services inherit.
IMAGE_ENV = {"BENTOML_HOME": "/data/bentoml"}


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blanks skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def resolve_compose(env: dict[str, str], workdir: Path) -> dict[str, Any]:
    """The compose file as docker-compose itself resolves it against this .env (interpolation, env_file, anchors)."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "docker-compose.yml", workdir / "docker-compose.yml")
    if not (workdir / "docker").exists():
        (workdir / "docker").symlink_to(ROOT / "docker")  # bind-mounted files resolve to the checkout's
    (workdir / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    result = subprocess.run(
        ["docker-compose", "--project-directory", str(workdir), "-f", str(workdir / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"docker-compose config failed:\n{result.stderr}")
    return dict(yaml.safe_load(result.stdout))


@dataclass
class Stack:
    """One stack's addresses, databases, folders and processes."""

    root: Path
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)  # type: ignore[type-arg]
    logs: dict[str, Path] = field(default_factory=dict)
    compose: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, **overrides: str) -> "Stack":
        """A stack with .env.example's settings, private databases, free ports, and `overrides` on top."""
        ports = {name: free_port() for name in CONTAINER_PORTS if name != "postgres"} | {"postgres": 5432}
        suffix = uuid.uuid4().hex[:8]
        env = read_env_file(ROOT / ".env.example") | {
            "POSTGRES_USER": "postgres",  # the machine's PostgreSQL trusts local connections
            "POSTGRES_PASSWORD": "unused",
            "MLFLOW_DB": f"nf_stack_{suffix}_mlflow",
            "PREFECT_DB": f"nf_stack_{suffix}_prefect",
            "PREDICTIONS_DB": f"nf_stack_{suffix}_predictions",
            "MLFLOW_PORT": str(ports["mlflow"]),
            "PREFECT_PORT": str(ports["prefect-server"]),
            "SERVICE_PORT": str(ports["service"]),
            "MLFLOW_PUBLIC_URL": f"http://127.0.0.1:{ports['mlflow']}",
            "PREFECT_PUBLIC_URL": f"http://127.0.0.1:{ports['prefect-server']}",
        }
        stack = cls(root=root, env=env | overrides, ports=ports)
        stack.compose = resolve_compose(stack.env, root / "compose")
        return stack

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def localize(self, text: str, service: str) -> str:
        """Rewrite one command word or environment value from container addresses and paths to local ones."""
        for name, port in CONTAINER_PORTS.items():
            text = text.replace(f"{name}:{port}", f"127.0.0.1:{self.ports[name]}")
        own = CONTAINER_PORTS.get(service)
        if own is not None:
            text = re.sub(rf"(127\.0\.0\.1|localhost):{own}\b", rf"\1:{self.ports[service]}", text)
        text = text.replace("0.0.0.0", "127.0.0.1")
        folders = {"/app": ROOT, "/mlflow": self.root / "mlflow", "/data": self.root / "data"}
        for inside, outside in folders.items():
            text = re.sub(rf"(?<![\w/.-]){re.escape(inside)}(?=/|$|\s|')", str(outside), text)
        return text

    def command(self, service: str) -> list[str]:
        spec = self.compose["services"][service]
        words = spec["command"] if isinstance(spec["command"], list) else shlex.split(spec["command"])
        words = [self.localize(word, service) for word in words]
        if service in CONTAINER_PORTS and "--port" in words:
            words[words.index("--port") + 1] = str(self.ports[service])
        return words

    def environment(self, service: str) -> dict[str, str]:
        spec = self.compose["services"][service]
        declared = IMAGE_ENV | {key: "" if value is None else str(value) for key, value in spec["environment"].items()}
        local = {key: self.localize(value, service) for key, value in declared.items()}
        if service == "prefect-worker":
            local["PREFECT_WORKER_WEBSERVER_PORT"] = str(self.ports[service])
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("NEUROFLOW_", "PREFECT_", "MLFLOW_"))}
        venv_bin = str(Path(sys.executable).parent)
        return (
            inherited
            | local
            | {
                "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
                "HOME": str(self.root / "home"),  # what a fresh container has: nothing from the user's home
            }
        )

    def working_dir(self, service: str) -> Path:
        spec = self.compose["services"][service]
        folder = Path(self.localize(spec.get("working_dir", "/app"), service))
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def create_databases(self) -> None:
        """What the postgres service does on a fresh volume: its init script, run against the local server."""
        env = self.environment("postgres") | {"PGHOST": "127.0.0.1", "PGPORT": "5432"}
        init = self.compose["services"]["postgres"]["volumes"][1].split(":")[0]
        subprocess.run(["bash", init], env=env, check=True, capture_output=True, timeout=60)

    def query(self, database: str, sql: str) -> str:
        """One value from one of the stack's PostgreSQL databases (MLFLOW_DB, PREFECT_DB or PREDICTIONS_DB)."""
        result = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", self.env[database], "-tAc", sql],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return result.stdout.strip()

    def drop_databases(self) -> None:
        for database in (self.env["MLFLOW_DB"], self.env["PREFECT_DB"], self.env["PREDICTIONS_DB"]):
            subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                ],
                capture_output=True,
                check=False,
                timeout=60,
            )

    def start(self, service: str) -> None:
        (self.root / "home").mkdir(exist_ok=True)
        log = self.root / f"{service}.log"
        self.logs[service] = log
        with log.open("w") as output:
            self.processes[service] = subprocess.Popen(
                self.command(service),
                cwd=self.working_dir(service),
                env=self.environment(service),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthy(self, service: str) -> bool:
        """Run the service's compose healthcheck, as the engine would."""
        test = self.compose["services"][service]["healthcheck"]["test"]
        if test[0] == "CMD-SHELL":
            command = ["sh", "-c", test[1].replace("$$", "$")]
        else:
            command = [self.localize(word, service) for word in test[1:]]
        env = self.environment(service)
        result = subprocess.run(command, env=env, capture_output=True, check=False, timeout=30)
        return result.returncode == 0

    def wait_healthy(self, services: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(services)
        while waiting:
            for service in list(waiting):
                process = self.processes.get(service)
                if process is not None and process.poll() is not None:
                    raise AssertionError(f"{service} exited ({process.returncode}):\n{self.tail(service)}")
                if self.healthy(service):
                    waiting.remove(service)
            if waiting and time.monotonic() > deadline:
                raise AssertionError(
                    f"not healthy after {timeout:.0f} s: {waiting}\n"
                    + "\n".join(f"--- {name}\n{self.tail(name)}" for name in waiting)
                )
            time.sleep(1)

    def tail(self, service: str, chars: int = 4000) -> str:
        log = self.logs.get(service)
        return log.read_text(errors="replace")[-chars:] if log and log.exists() else "(no log)"

    def stop(self) -> None:
        for service in reversed(list(self.processes)):
            stop_group(self.processes[service], grace=30)
