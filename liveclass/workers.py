"""`liveclass serve --workers N`: N node processes on this machine, one per core, behind one public address.

Each worker is a whole `liveclass serve` (its own port, event loop and media sockets); they find each other
through Redis and share the store in PostgreSQL, exactly as nodes on several machines do. This parent only
starts them, restarts one that dies, and passes SIGTERM on (every worker then moves its rooms away).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from liveclass.config import ConfigError, Settings

RESTART_DELAY = 1.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def check(settings: Settings, workers: int) -> None:
    """Several workers need the cluster's engines: say so once, before anything starts."""
    if workers > 1 and not (settings.redis_url and settings.effective_database_url.startswith("postgresql")):
        raise ConfigError(
            f"--workers {workers} needs LIVECLASS_REDIS_URL and a PostgreSQL LIVECLASS_DATABASE_URL: the workers "
            "share where each class runs through Redis and their records through PostgreSQL "
            "(docs/operations.md, section 8). Without them, run one worker."
        )
    if workers > 1 and settings.host in ("0.0.0.0", "::", "") and not settings.public_url:
        raise ConfigError(
            f"--workers {workers} on {settings.host or 'every address'} needs LIVECLASS_PUBLIC_URL: "
            "browsers reach each worker at PUBLIC_URL/node/PORT through the reverse proxy."
        )


def worker_env(settings: Settings, index: int) -> dict[str, str]:
    """Worker `index` listens on port + index; clients reach its Socket.IO at PUBLIC_URL/node/PORT through
    the reverse proxy (or directly at http://host:port without a public URL)."""
    port = settings.port + index
    env = {
        "LIVECLASS_PORT": str(port),
        "LIVECLASS_HOST": settings.host,
        "LIVECLASS_NODE_ID": f"{settings.node_id}-{index + 1}" if settings.node_id else f"{settings.host}:{port}",
    }
    # Each worker its own URL (never one inherited by all of them).
    env["LIVECLASS_NODE_URL"] = f"{settings.public_url.rstrip('/')}/node/{port}" if settings.public_url else ""
    return env


def _stop_with_parent() -> None:
    """In the worker, before it starts: if this parent dies (kill -9), the worker gets SIGTERM and drains,
    instead of running on unsupervised (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run(settings: Settings, workers: int, data_dir: Path | None) -> None:
    """Start the workers and keep them running until SIGTERM or SIGINT."""
    stopping = False

    def spawn(index: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "liveclass.cli", "serve"]
        if data_dir is not None:
            command += ["--data-dir", str(data_dir)]
        return subprocess.Popen(
            command, env={**os.environ, **worker_env(settings, index)}, preexec_fn=_stop_with_parent
        )

    def stop(signum, frame) -> None:  # noqa: ANN001
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    children: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children += [spawn(i) for i in range(workers)]
    print(f"LiveClass: {workers} workers on ports {settings.port}–{settings.port + workers - 1}", flush=True)
    while True:
        time.sleep(0.2)
        if stopping:
            if all(child.poll() is not None for child in children):
                return
            continue
        for index, child in enumerate(children):
            if child.poll() is not None and not stopping:
                print(
                    f"LiveClass: worker {index + 1} exited ({child.returncode}); restarting it",
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(RESTART_DELAY)
                if not stopping:  # a stop that came meanwhile must not get a new worker to wait for
                    children[index] = spawn(index)
