"""Start and stop the servers of the side-by-side benchmarks.

`rest.py` and `suite.py` share these helpers: free ports on 127.0.0.1, a
`Server` that starts one `inferpool start` or `mlserver start` process,
waits until a model returns 200, and on `stop()` sends SIGTERM and checks that
the server and every worker process it started have exited, and CPU time
read from /proc.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"

# Seconds a server may take to start and load the model, and to exit
# after SIGTERM before it is killed.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


class Interrupted(Exception):
    """The script received SIGTERM."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Return the pids of every living descendant of `pid`, from /proc."""
    found = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    for child in children.read().split():
                        found.append(int(child))
                        pending.append(int(child))
            except OSError:
                continue
    return found


def is_running(pid: int) -> bool:
    """Return True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU seconds of `pid`, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime are fields 14 and 15 of proc(5), in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_status(url: str, body: bytes | None = None) -> int | None:
    """Return the status of one request to `url`, or None when it fails."""
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


class Server:
    """One server process started by this script, with its log file."""

    def __init__(
        self,
        label: str,
        command: list[str],
        cwd: Path,
        env: dict,
        log_path: Path,
        http_port: int,
        grpc_port: int | None = None,
    ):
        self.label = label
        self.command = command
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.seen_pids: set[int] = set()
        self.http_port = http_port
        self.grpc_port = grpc_port

    def start(self) -> None:
        with open(self.log_path, "wb") as output:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        log(f"{self.label}: started pid {self.process.pid}: {' '.join(self.command)}")

    def wait_ready(self, model_name: str, body: bytes) -> None:
        """Wait until `model_name` returns 200 to an inference request with `body`."""
        assert self.process is not None
        base = f"http://{HOST}:{self.http_port}/v2/models/{model_name}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.label} exited with code {self.process.returncode} while "
                    f"starting; its log ends with:\n{self.log_tail()}"
                )
            if http_status(f"{base}/ready") == 200:
                status = http_status(f"{base}/infer", body)
                if status != 200:
                    raise RuntimeError(
                        f"{self.label} returned {status} to the first inference request; "
                        f"its log ends with:\n{self.log_tail()}"
                    )
                self.seen_pids.update(descendants(self.process.pid))
                log(f"{self.label}: ready, worker pids {sorted(self.seen_pids)}")
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.label} was not ready after {START_TIMEOUT:g} s; "
            f"its log ends with:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Send SIGTERM, wait for the exit and check no child is left.

        A server or child still running after STOP_TIMEOUT gets SIGKILL, and
        the script then raises, because a clean shutdown is part of the run.
        """
        if self.process is None:
            return
        process = self.process
        self.process = None
        self.seen_pids.update(descendants(process.pid))
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log(
                    f"{self.label}: still running {STOP_TIMEOUT:g} s after SIGTERM; sending SIGKILL"
                )
                process.kill()
                process.wait()
                raise RuntimeError(f"{self.label} did not exit after SIGTERM") from None

        deadline = time.monotonic() + STOP_TIMEOUT
        left = [pid for pid in self.seen_pids if is_running(pid)]
        while left and time.monotonic() < deadline:
            time.sleep(0.1)
            left = [pid for pid in left if is_running(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        if left:
            raise RuntimeError(
                f"{self.label}: worker processes {left} were still running after the "
                "server exited; they were killed"
            )
        log(
            f"{self.label}: stopped with exit code {process.returncode}, "
            f"no process left (pids {sorted({process.pid, *self.seen_pids})})"
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def mlserver_python(explicit: str | None) -> str:
    if explicit:
        return explicit
    completed = subprocess.run(
        [str(HERE / "mlserver_env.sh")], stdout=subprocess.PIPE, text=True, check=True
    )
    return completed.stdout.strip().splitlines()[-1]


def inferpool_server(
    repository: Path, workers: int, scratch: Path, extra_env: dict | None = None
) -> Server:
    """Return an unstarted `inferpool start` of `repository` on free ports.

    `extra_env` adds environment variables for the server and its workers.
    """
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    inferpool = Path(sys.executable).parent / "inferpool"
    command = [
        str(inferpool),
        "start",
        str(repository),
        "--host", HOST,
        "--http-port", str(http_port),
        "--grpc-port", str(grpc_port),
        "--metrics-port", str(metrics_port),
        "--parallel-workers", str(workers),
        "--log-level", "WARNING",
    ]  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("INFERPOOL_")
    }
    env.update(extra_env or {})
    server = Server(
        f"inferpool workers={workers}",
        command,
        scratch,
        env,
        scratch / f"inferpool-{workers}.log",
        http_port,
        grpc_port,
    )
    return server


def mlserver_server(
    repository: Path,
    workers: int,
    python: str,
    scratch: Path,
    extra_env: dict | None = None,
    extra_settings: dict | None = None,
) -> Server:
    """Return an unstarted `mlserver start` of `repository` on free ports.

    It writes `repository/settings.json` with the ports, `workers` and
    `extra_settings`. `extra_env` adds environment variables for the server
    and its workers.
    """
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    # settings.json is read at start, so rewriting it for the next server
    # does not disturb one that runs.
    settings = {
        "host": HOST,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": workers,
        "debug": False,
        "metrics_dir": str(scratch / f"mlserver-metrics-{workers}"),
        "environments_dir": str(scratch / f"mlserver-envs-{workers}"),
        **(extra_settings or {}),
    }
    (repository / "settings.json").write_text(json.dumps(settings, indent=2))
    mlserver = Path(python).parent / "mlserver"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MLSERVER_")
    }
    env.update(extra_env or {})
    server = Server(
        f"MLServer workers={workers}",
        [str(mlserver), "start", str(repository)],
        scratch,
        env,
        scratch / f"mlserver-{workers}.log",
        http_port,
        grpc_port,
    )
    return server


def source_state() -> dict:
    """Return the commit of the tree and `git status` of src/, which others may edit."""

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        return completed.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "src_changes": git("status", "--short", "src"),
    }


def raise_interrupted(signum, frame) -> None:
    raise Interrupted(f"received signal {signum}")
