"""The benchmark's conductor: servers, seed data, worker processes, measuring windows, numbers.

Every scenario gets a fresh `liveclass serve` process (SQLite in a temporary data directory) on a
free loopback port, a seeded class with a period, one teacher worker process and a few student
worker processes. Only the server process is measured (psutil cpu_times over the window).
The scale-out scenario (several node processes, Redis, PostgreSQL) is scaleout.py's, the chat
acknowledgement scenario (SQLite and PostgreSQL, Socket.IO only) chat.py's, the weak-link scenario
(two-layer teacher, students on impaired links) weaklink.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import psutil

from bench.peers import now
from bench.ports import free_port

PASSWORD = "Bench-mat-khau-2026"
TS_MOD = 1 << 32


@dataclass
class Options:
    students: list[int] = field(default_factory=lambda: [5, 15, 45])
    window: float = 10.0
    baseline_window: float = 5.0
    settle: float = 3.0
    full_class: tuple[int, int] | None = (45, 5)  # students, student cameras
    recording: tuple[int, int] | None = (45, 5)  # the recording-cost scenario's class (None: skip)
    relay: int = 4
    screen: bool = False  # teacher screen share in the per-N scenarios too
    per_process: int = 12  # students per worker process
    priority: bool = True  # server and probe at nice -5 (see PRIORITY)
    profile: float = 0.0  # seconds of steady forwarding profiled (cProfile) in a last run (0: none)
    nodes: tuple[int, int] | None = None  # the scale-out scenario's node processes and classes (None: skip)
    nodes_students: int = 15  # students per class there
    nodes_ttl: float = 3.0  # LIVECLASS_NODE_TTL_SECONDS of its nodes (the failover waits this long)
    chat: int | None = None  # students of the chat scenario (None: skip)
    chat_window: float = 20.0  # seconds of its steady chat
    chat_bursts: int = 3  # bursts after it (every student at once)
    postgres: str = "postgresql://postgres@127.0.0.1:5432/test"  # a database to connect to (to create its own)
    redis: str = "redis://127.0.0.1:6379/0"
    weak_link: float | None = None  # minutes of each window of the weak-link scenario (None: skip)
    weak_link_class: tuple[int, int] = (45, 10)  # its students, and how many on weak links
    weak_link_decode: int = 5  # clean students that decode there (every weak one does)
    workdir: Path = Path(".")
    progress: Any = print


# --------------------------------------------------------------------------------------- processes
#: Nice value for the server and the probe student (0: leave as is). The server stands for a machine
#: of its own; the synthetic clients and anything else running here should not take its CPU.
PRIORITY = {"nice": -5}


def _raise_priority() -> None:
    """preexec_fn: run the child with a better nice value, if allowed (silently not otherwise)."""
    if PRIORITY["nice"]:
        try:
            os.nice(PRIORITY["nice"])
        except OSError:
            pass


class Worker:
    """A worker process (bench.worker) spoken to in JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc, self.name = proc, name
        self.pid = proc.pid
        self._next = 1
        self._waiting: dict[int, asyncio.Future] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, role: str, name: str, log_path: Path, priority: bool = False) -> "Worker":
        log = open(log_path, "ab")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.worker",
            role,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            limit=2**27,
            preexec_fn=_raise_priority if priority else None,
        )
        log.close()
        worker = cls(proc, name)
        worker._waiting[0] = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(worker._waiting[0], 60)
        return worker

    async def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None  # started with stdout=PIPE
        while True:
            line = await stdout.readline()
            if not line:
                break
            message = json.loads(line)
            future = self._waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError(f"{self.name} exited (see its log)"))

    async def call(self, cmd: str, timeout: float = 120, **args: Any) -> Any:
        ident = self._next
        self._next += 1
        future = self._waiting[ident] = asyncio.get_running_loop().create_future()
        stdin = self.proc.stdin
        assert stdin is not None  # started with stdin=PIPE
        stdin.write((json.dumps({"id": ident, "cmd": cmd, **args}) + "\n").encode())
        await stdin.drain()
        message = await asyncio.wait_for(future, timeout)
        if not message["ok"]:
            raise RuntimeError(f"{self.name}: {cmd}: {message['error']}")
        return message["data"]

    async def close(self) -> None:
        if self.proc.returncode is None:
            stdin = self.proc.stdin
            assert stdin is not None  # started with stdin=PIPE
            try:
                stdin.write(b'{"id": -1, "cmd": "quit"}\n')
                await stdin.drain()
                await asyncio.wait_for(self.proc.wait(), 15)
            except (asyncio.TimeoutError, ConnectionError):
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()


class ServerProcess:
    def __init__(self, args: list[str], log_path: Path, env: dict[str, str], health_url: str) -> None:
        self.log = open(log_path, "ab")
        self.popen = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env=env, preexec_fn=_raise_priority
        )
        self.process = psutil.Process(self.popen.pid)
        self.health_url = health_url

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"the server exited with status {self.popen.returncode} (see {self.log.name})")
                try:
                    async with http.get(self.health_url) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the server did not come up")

    def cpu(self) -> float:
        times = self.process.cpu_times()
        return times.user + times.system

    def system_cpu(self) -> float:
        return self.process.cpu_times().system

    def main_thread_cpu(self) -> float | None:
        """CPU seconds of the server's main thread (its event loop); the rest of the process's CPU
        is other threads' (the recorder's writer, the default executor)."""
        try:
            for thread in self.process.threads():
                if thread.id == self.process.pid:
                    return thread.user_time + thread.system_time
        except (psutil.Error, AttributeError):
            pass
        return None

    def rss(self) -> int:
        return self.process.memory_info().rss

    def write_bytes(self) -> int | None:
        """Bytes the process caused to be written to storage (Linux I/O accounting), if available."""
        try:
            return self.process.io_counters().write_bytes
        except (psutil.Error, AttributeError):
            return None

    async def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            for _ in range(150):
                if self.popen.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            else:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def processes(workers: list[Worker]) -> list[psutil.Process]:
    """The workers' processes, for cpu_seconds()."""
    found = []
    for worker in workers:
        try:
            found.append(psutil.Process(worker.pid))
        except psutil.Error:
            pass
    return found


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU seconds of the processes so far (one that exited counts nothing)."""
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}


async def start_liveclass(
    data_dir: Path, log_path: Path, profile_dir: Path | None = None, env: dict[str, str] | None = None
) -> tuple[ServerProcess, str]:
    """`liveclass serve` on a free loopback port (under profiled_serve.py if `profile_dir`), with
    `env`'s LIVECLASS_* settings added (a node of several: Redis, PostgreSQL)."""
    port = free_port()
    env = {**_clean_env(), "LIVECLASS_LOG_LEVEL": "WARNING", **(env or {})}
    command = ["-m", "bench.profiled_serve", str(profile_dir)] if profile_dir else ["-m", "liveclass.cli"]
    server = ServerProcess(
        [sys.executable, *command, "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
        log_path,
        env,
        f"http://127.0.0.1:{port}/healthz",
    )
    try:
        await server.ready()
    except BaseException:
        await server.stop()  # not left running (or its log open) when it never became healthy
        raise
    return server, f"http://127.0.0.1:{port}"


async def start_relay(log_path: Path) -> tuple[ServerProcess, str]:
    port = free_port()
    server = ServerProcess(
        [sys.executable, "-m", "bench.relay", "--port", str(port)],
        log_path,
        _clean_env(),
        f"http://127.0.0.1:{port}/healthz",
    )
    await server.ready()
    return server, f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------------------------------ seeding
async def seed(data_dir: Path, students: int) -> dict:
    """A teacher, `students` students enrolled in one class, and a period of that class running
    now; written straight into a fresh SQLite store (migrated first)."""
    from liveclass.config import load_settings, prepare_data_dir
    from liveclass.db import upgrade_database

    os.environ.pop("LIVECLASS_CONFIG", None)
    settings = prepare_data_dir(load_settings(data_dir=data_dir, database_url=""))
    await asyncio.to_thread(upgrade_database, settings.effective_database_url)
    return (await seed_classes(settings.effective_database_url, 1, students))[0]


async def seed_classes(database_url: str, classes: int, students: int) -> list[dict]:
    """`classes` classes, each with its own teacher, `students` students and a period running now,
    written straight into a migrated store. The first class's accounts are the ones seed() always made."""
    from liveclass.models import AccountRole, Enrollment, Period, SchoolClass, TeachingAssignment

    start = datetime.now(timezone.utc)
    async with _store(database_url) as db:
        seeded = []
        for c in range(classes):
            teacher = _user(f"0900{c + 1:08d}", f"Giáo Viên Thử {c + 1}", AccountRole.teacher)
            learners = [
                _user(f"0910{c * 1000 + i:08d}", f"Học Sinh {i:02d}", AccountRole.student) for i in range(students)
            ]
            db.add_all([teacher, *learners])
            await db.flush()
            school_class = SchoolClass(
                name="10B" if c == 0 else f"10B-{c + 1}", school_year="2026-2027", homeroom_teacher_id=teacher.id
            )
            db.add(school_class)
            await db.flush()
            db.add_all([Enrollment(class_id=school_class.id, student_id=s.id) for s in learners])
            db.add(TeachingAssignment(teacher_id=teacher.id, class_id=school_class.id, subject="Vật lý"))
            period = Period(
                class_id=school_class.id,
                subject="Vật lý",
                teacher_id=teacher.id,
                starts_at=start - timedelta(minutes=5),
                ends_at=start + timedelta(hours=3),
            )
            db.add(period)
            await db.flush()
            seeded.append(
                {
                    "teacher": {"personal_id": teacher.personal_id, "password": PASSWORD},
                    "students": [{"personal_id": s.personal_id, "password": PASSWORD} for s in learners],
                    "period_id": period.id,
                }
            )
        await db.commit()
    return seeded


async def seed_admin(database_url: str) -> dict:
    """An administrator (GET /nodes is theirs)."""
    from liveclass.models import AccountRole

    personal_id = "099900000001"
    async with _store(database_url) as db:
        db.add(_user(personal_id, "Quản Trị Thử", AccountRole.admin))
        await db.commit()
    return {"personal_id": personal_id, "password": PASSWORD}


@functools.lru_cache(maxsize=1)
def _password_hash() -> str:
    """Hashed once: a slow hash, and every account has the same password."""
    from liveclass.passwords import hash_generated_password

    return hash_generated_password(PASSWORD)


def _user(personal_id: str, name: str, role) -> Any:
    from liveclass.models import User

    return User(
        personal_id=personal_id,
        full_name=name,
        role=role,
        password_hash=_password_hash(),
        must_change_password=False,
        active=True,
    )


@contextlib.asynccontextmanager
async def _store(database_url: str):
    """A database session on a store, its engine disposed of afterwards."""
    from liveclass.db import create_engine, session_factory

    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as db:
            yield db
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------------------- analysis
def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float], scale: float = 1.0, digits: int = 3) -> dict:
    if not values:
        return {"n": 0, "median": None, "p95": None, "min": None, "max": None}
    p95 = percentile(values, 0.95)
    assert p95 is not None  # (values is not empty)
    return {
        "n": len(values),
        "median": round(statistics.median(values) * scale, digits),
        "p95": round(p95 * scale, digits),
        "min": round(min(values) * scale, digits),
        "max": round(max(values) * scale, digits),
    }


def frame_latencies(sent: list[list], received: list[list]) -> tuple[list[float], list[float], int]:
    """Latencies (s) of the frames a student received, matched to the frames the publisher sent.

    The SFU rewrites RTP timestamps with a per-slot offset, so the offset is found first: for the
    first received frames, every sent frame of the same payload size that left within the second
    before votes for (received ts - sent ts); the winning offset maps every received frame to its
    sent frame (sizes must agree). Returns (last packet sent -> last packet received, first packet
    sent -> first packet received, frames matched)."""
    if not sent or not received:
        return [], [], 0
    sent = sorted(sent, key=lambda f: f[2])
    sent_times = [f[2] for f in sent]
    by_ts = {f[0]: f for f in sent}
    votes: Counter = Counter()
    for ts, _first, last, size, _key in received[:60]:
        for f in sent[bisect_left(sent_times, last - 1.0) : bisect_right(sent_times, last)]:
            if f[3] == size:
                votes[(ts - f[0]) % TS_MOD] += 1
    if not votes:
        return [], [], 0
    offset, count = votes.most_common(1)[0]
    if count < min(10, max(2, len(received) // 3)):
        return [], [], 0  # no consistent offset (e.g. a relay that re-encodes: nothing to match)
    frame, packet = [], []
    for ts, first, last, size, _key in received:
        match = by_ts.get((ts - offset) % TS_MOD)
        if match is not None and match[3] == size and last >= match[2]:
            frame.append(last - match[2])
            packet.append(first - match[1])
    return frame, packet, len(frame)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def _busy(m) -> float:
    """Busy CPU seconds of the whole machine in a psutil.cpu_times() reading."""
    return m.user + m.system + m.nice + getattr(m, "irq", 0) + getattr(m, "softirq", 0)


async def busy_cores(seconds: float) -> float:
    """How many cores the machine keeps busy (everything running), over `seconds`."""
    m0, t0 = psutil.cpu_times(), time.monotonic()
    await asyncio.sleep(seconds)
    return round((_busy(psutil.cpu_times()) - _busy(m0)) / (time.monotonic() - t0), 2)


def machine() -> dict:
    import platform

    import aiortc
    import av

    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "aiortc": aiortc.__version__,
        "pyav": av.__version__,
    }


async def measure_cpu(server: ServerProcess, workers: list[Worker], start: float, end: float) -> dict:
    """From `start` to `end` (now() values): the server's CPU (core fractions: all, kernel, outside its
    main thread), the worker processes' and the whole machine's, and the server's RSS at the end."""
    clients = processes(workers)

    def client_cpu() -> float:
        return cpu_seconds(clients)

    await asyncio.sleep(max(0.0, start - now()))
    c0, k0, t0, m0, s0 = server.cpu(), client_cpu(), now(), psutil.cpu_times(), server.system_cpu()
    e0 = server.main_thread_cpu()
    await asyncio.sleep(max(0.0, end - now()))
    c1, k1, t1, m1, s1 = server.cpu(), client_cpu(), now(), psutil.cpu_times(), server.system_cpu()
    e1 = server.main_thread_cpu()
    return {
        "server_core_fraction": (c1 - c0) / (t1 - t0),
        "clients_core_fraction": (k1 - k0) / (t1 - t0),
        "server_outside_main_thread_fraction": max(0.0, (c1 - c0) - (e1 - e0)) / (t1 - t0)
        if e0 is not None and e1 is not None
        else None,
        "server_kernel_fraction": (s1 - s0) / (t1 - t0),
        "machine_busy_cores": (_busy(m1) - _busy(m0)) / (t1 - t0),
        "seconds": t1 - t0,
        "rss": server.rss(),
    }


# ---------------------------------------------------------------------------------------- scenarios
class Scenario:
    """One measured configuration: a server, a teacher, students; see run()."""

    def __init__(
        self,
        opts: Options,
        name: str,
        students: int,
        *,
        cameras: int = 0,
        screen: bool = False,
        mode: str = "liveclass",
        late_joiner: bool = True,
        profile: float = 0.0,
        record: bool = False,
    ) -> None:
        """profile > 0: a profiling run instead of a measured one (cProfile on the join storm, then
        `profile` seconds of steady forwarding). record: after the (unrecorded) window, the teacher
        records the class for a second window, then stops, and a third window is unrecorded again
        (see _recording_cost)."""
        self.opts, self.name, self.n = opts, name, students
        self.cameras, self.screen, self.mode = cameras, screen, mode
        self.profile = profile
        self.record = record and mode == "liveclass" and not profile
        self.late_joiner = late_joiner and mode == "liveclass" and not profile and not self.record
        # One student alone in its own process: its latency shows what the clients' own load adds.
        self.probe = mode == "liveclass" and students >= 2
        self.dir = opts.workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.server: ServerProcess | None = None
        self.teacher: Worker | None = None
        self.workers: list[Worker] = []
        self.placement: list[tuple[Worker, int]] = []  # student i -> (worker, index in the worker)
        self.result: dict[str, Any] = {
            "name": name,
            "mode": mode,
            "students": students,
            "student_cameras": cameras,
            "teacher_screen": screen,
        }

    def say(self, text: str) -> None:
        self.opts.progress(f"[{self.name}] {text}")

    def _server(self) -> ServerProcess:
        """The server (set by _start)."""
        assert self.server is not None, "_start first"
        return self.server

    def _teacher(self) -> Worker:
        """The teacher's worker (set by _start)."""
        assert self.teacher is not None, "_start first"
        return self.teacher

    async def _measure_cpu(self, start: float, end: float) -> dict:
        return await measure_cpu(self._server(), [self._teacher(), *self.workers], start, end)

    async def run(self) -> dict:
        try:
            await self._run()
        finally:
            await self._teardown()
        return self.result

    async def _start(self) -> tuple[str, dict]:
        extra = 1 if self.late_joiner else 0
        if self.mode == "liveclass":
            accounts = await seed(self.dir / "data", self.n + extra)
            self.server, base_url = await start_liveclass(
                self.dir / "data", self.dir / "server.log", self.dir if self.profile else None
            )
            self.result["server_idle_rss_mb"] = round(self.server.rss() / 1e6, 1)
        else:
            accounts = {"teacher": {}, "students": [{} for _ in range(self.n)], "period_id": 0}
            self.server, base_url = await start_relay(self.dir / "server.log")
        for i, account in enumerate(accounts["students"]):
            account["camera"] = i < self.cameras
        names = ["probe"] if self.probe else []
        names += [f"students-{g}" for g in range(max(1, -(-(self.n - len(names)) // self.opts.per_process)))]
        starting = [Worker.start("teacher", "teacher", self.dir / "teacher.log")]
        starting += [
            Worker.start("students", name, self.dir / f"{name}.log", priority=name == "probe") for name in names
        ]
        self.teacher, *self.workers = await asyncio.gather(*starting)
        per_worker: list[list[dict]] = [[] for _ in self.workers]
        spread = self.workers[1:] if self.probe else self.workers
        for i, account in enumerate(accounts["students"][: self.n]):
            worker = self.workers[0] if self.probe and i == 0 else spread[(i - self.probe) % len(spread)]
            g = self.workers.index(worker)
            self.placement.append((worker, len(per_worker[g])))
            per_worker[g].append(account)
        if self.late_joiner:  # the last account joins later, from the busiest kind of worker
            late = spread[0]
            g = self.workers.index(late)
            self.late = (late, len(per_worker[g]))
            per_worker[g].append(accounts["students"][self.n])
        teacher = self.teacher.call(
            "init",
            mode=self.mode,
            base_url=base_url,
            screen=self.screen,
            personal_id=accounts["teacher"].get("personal_id", ""),
            password=PASSWORD,
            period_id=accounts["period_id"],
            timeout=60,
        )
        logins = [
            w.call("init", mode=self.mode, base_url=base_url, accounts=a, timeout=120)
            for w, a in zip(self.workers, per_worker)
        ]
        info, *_ = await asyncio.gather(teacher, *logins)
        return base_url, info

    def _initial(self, worker: Worker) -> list[int]:
        return [i for w, i in self.placement if w is worker]

    async def _run(self) -> None:
        opts = self.opts
        self.say(f"starting the server, a teacher and {self.n} students" + (" (profiling run)" if self.profile else ""))
        _, info = await self._start()
        session_id = info.get("session_id")
        # 1. the teacher alone: what receiving the teacher's media costs
        await asyncio.sleep(opts.settle)
        start = now() + 0.1
        base = await self._measure_cpu(start, start + opts.baseline_window)
        self.result["teacher_only"] = {
            "server_cpu_pct": round(100 * base["server_core_fraction"], 2),
            "server_rss_mb": round(base["rss"] / 1e6, 1),
        }
        # 2. everyone waits in the lobby; the teacher admits them all at once
        self.say("students enter the lobby" if self.mode == "liveclass" else "students subscribe")
        await asyncio.gather(
            *(w.call("enter", session_id=session_id, which=self._initial(w), timeout=120) for w in self.workers)
        )
        t_admit = None
        if self.mode == "liveclass":
            await self._teacher().call("wait_lobby", count=self.n, within=60, timeout=70)
            if self.profile:
                self._server().popen.send_signal(signal.SIGUSR1)  # cProfile on
                await asyncio.sleep(0.2)
            c0, t0, m0 = self._server().cpu(), now(), psutil.cpu_times()
            admit = await self._teacher().call("admit_all")
            t_admit = admit["t_admit"]
            self.say(f"admitted {admit['admitted']} at once")
        else:
            c0, t0, m0 = self._server().cpu(), now(), psutil.cpu_times()
        reports = await asyncio.gather(
            *(w.call("wait_media", which=self._initial(w), within=60, timeout=70) for w in self.workers)
        )
        c1, t1, m1 = self._server().cpu(), now(), psutil.cpu_times()
        if self.profile:
            self._server().popen.send_signal(signal.SIGUSR2)  # cProfile off, written to 1.prof
        students = [s for r in reports for s in r["students"]]
        if t_admit is None:  # the relay has no lobby: from the first subscribe request
            t_admit = min(s["t_admitted"] for s in students)
        if not self.profile:  # the answers' acknowledgements may still be on their way: ask again
            await asyncio.sleep(1.0)
            reports = await asyncio.gather(
                *(w.call("wait_media", which=self._initial(w), within=0) for w in self.workers)
            )
            students = [s for r in reports for s in r["students"]]
        self.result["join_storm"] = self._storm(students, t_admit)
        # was the server busy all along? (polled every 20 ms, so t1 is a little late)
        self.result["join_storm"].update(
            {
                "seconds_until_last_first_frame": round(t1 - t0, 3),
                "server_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 1),
                "machine_busy_cores": round((_busy(m1) - _busy(m0)) / (t1 - t0), 2),
            }
        )
        if self.profile:
            from bench.profile import summarise

            self.result["storm_profile"] = summarise(await self._profile_file(1), t1 - t0, c1 - c0)
            await asyncio.sleep(opts.settle)
            self.say(f"profiling the server for {self.profile:.0f} s of steady forwarding (cProfile)")
            self._server().popen.send_signal(signal.SIGUSR1)
            c0, t0 = self._server().cpu(), now()
            await asyncio.sleep(self.profile)
            c1, t1 = self._server().cpu(), now()
            self._server().popen.send_signal(signal.SIGUSR2)
            self.result["steady_profile"] = summarise(await self._profile_file(2), t1 - t0, c1 - c0)
            return
        # 3. the measuring window
        await asyncio.sleep(opts.settle)
        self.result.update(await self._measure_window(base))
        if self.record:
            await self._recording_cost(base)
        # 4. a late joiner
        if self.late_joiner:
            worker, index = self.late
            await worker.call("enter", session_id=session_id, which=[index])
            await self._teacher().call("wait_lobby", count=1, within=30, timeout=40)
            admit = await self._teacher().call("admit_all")
            report = (await worker.call("wait_media", which=[index], within=30, timeout=40))["students"][0]
            first = report["t_first_frame"]
            self.result["late_joiner_first_frame_s"] = round(first - admit["t_admit"], 3) if first else None

    async def _measure_window(self, base: dict) -> dict:
        """One measuring window of `opts.window` seconds, starting now: the server, the students,
        the teacher; analysed (see _analyse)."""
        opts = self.opts
        start = now() + 0.3
        end = start + opts.window
        cpu, teacher, *windows = await asyncio.gather(
            self._measure_cpu(start, end),
            self._teacher().call("window", start=start, end=end, timeout=opts.window + 60),
            *(
                w.call(
                    "window",
                    start=start,
                    end=end,
                    which=self._initial(w),
                    log_slots=["teacher_camera", "screen"],
                    timeout=opts.window + 60,
                )
                for w in self.workers
            ),
        )
        sent = await self._teacher().call("frames", start=start - 2.0, end=end + 1.0)
        students = []
        for worker, window in zip(self.workers, windows):
            for student in window["students"]:
                student["probe"] = worker.name == "probe"
                students.append(student)
        analysis = self._analyse(base, cpu, teacher, students, sent)
        analysis["publisher_keyframes_in_window"] = {
            source: sum(1 for f in frames if f[4] and start <= f[2] < end) for source, frames in sent.items()
        }
        return analysis

    async def _recording_cost(self, base: dict) -> None:
        """The class just measured, recorded: the teacher sends rec:start over Socket.IO, a window
        is measured while the server records, rec:stop, then one more unrecorded window (so that a
        drift of the class over time shows). The recording's files are checked on disk."""
        opts = self.opts
        recordings = self.dir / "data" / "recordings"
        windows = {"unrecorded_before": _window_summary(self.result)}
        self.say("the teacher starts recording (rec:start)")
        started = await self._teacher().call("record", action="start")
        if started["status"].get("state") != "recording":
            raise RuntimeError(f"rec:start answered {started['status']}")
        await asyncio.sleep(opts.settle)
        bytes0, io0, t0 = _media_bytes(recordings), self._server().write_bytes(), now()
        recorded = await self._measure_window(base)
        bytes1, io1, t1 = _media_bytes(recordings), self._server().write_bytes(), now()
        windows["recorded"] = _window_summary(recorded)
        stopped = await self._teacher().call("record", action="stop")
        self.say(f"rec:stop answered in {stopped['seconds']:.2f} s; one more unrecorded window")
        recording = _recording_files(recordings)
        await asyncio.sleep(opts.settle)
        windows["unrecorded_after"] = _window_summary(await self._measure_window(base))
        unrecorded = [w["server_cpu_pct"] for w in (windows["unrecorded_before"], windows["unrecorded_after"])]
        mean = statistics.fmean(unrecorded)
        cpu = windows["recorded"]["server_cpu_pct"]
        seconds = t1 - t0
        duration_s = (recording.get("duration_ms") or 0) / 1000
        # The recorder's writer thread (depacketize, mux, write) is the only busy thread besides the
        # event loop's, so its cost shows, less disturbed, as the CPU outside the main thread.
        outside = [w["server_cpu_outside_main_thread_pct"] for w in windows.values()]
        self.result["recording"] = {
            "windows": windows,
            "server_cpu_unrecorded_pct": round(mean, 2),
            "server_cpu_recorded_pct": cpu,
            "server_cpu_difference_pct": round(cpu - mean, 2),
            "server_cpu_ratio": round(cpu / mean, 3) if mean > 0 else None,
            "recorder_thread_cpu_pct": round(outside[1] - (outside[0] + outside[2]) / 2, 2)
            if None not in outside
            else None,
            # the disk: what the recording's media files grew by during the recorded window ...
            "window_media_bytes_per_s": round((bytes1 - bytes0) / seconds),
            "window_media_mb_per_minute": round((bytes1 - bytes0) / seconds * 60 / 1e6, 2),
            # ... what the server process wrote to storage in that time (every file, not only media)
            "window_server_write_bytes_per_s": round((io1 - io0) / seconds)
            if io0 is not None and io1 is not None
            else None,
            # ... and the finished recording: its files' bytes over its duration
            "mb_per_minute": round(recording["bytes"] / duration_s * 60 / 1e6, 2) if duration_s else None,
            "rec_start_answered_s": round(started["seconds"], 3),
            "rec_stop_answered_s": round(stopped["seconds"], 3),
            "stopped_state": stopped["status"].get("state"),
            **recording,
        }
        if not recording["files_ok"]:
            raise RuntimeError(f"the recording's files are missing or empty: {recording}")

    async def _profile_file(self, n: int) -> Path:
        path = self.dir / f"{n}.prof"
        for _ in range(300):
            if path.exists():
                await asyncio.sleep(0.5)  # let the write finish
                return path
            await asyncio.sleep(0.1)
        raise RuntimeError(f"the profiled server wrote no {path.name}")

    def _storm(self, students: list[dict], t_admit: float) -> dict:
        def between(key: str, origin: str | None = None) -> list[float]:
            return [
                s[key] - (s[origin] if origin else t_admit)
                for s in students
                if s.get(key) is not None and (origin is None or s.get(origin) is not None)
            ]

        first = between("t_first_frame")
        return {
            "admitted": len(students),
            "first_frame_s": summary(first),
            "without_first_frame": sum(s["t_first_frame"] is None for s in students),
            "errors": [s["error"] for s in students if s.get("error")][:5],
            # where the time goes, per student (median and max of each step)
            "steps_s": {
                "admit_to_lobby_admitted": summary(between("t_admitted")),
                "lobby_admitted_to_rtc_subscribe": summary(between("t_subscribe_sent", "t_admitted")),
                "rtc_subscribe_to_rtc_offer": summary(between("t_offer", "t_subscribe_sent")),
                "offer_to_answer_sent": summary(between("t_answer_sent", "t_offer")),
                "answer_sent_to_first_frame": summary(between("t_first_frame", "t_answer_sent")),
                "answer_sent_to_acknowledged": summary(between("t_answered", "t_answer_sent")),
            },
            "first_frames_sorted_s": [round(x, 3) for x in sorted(first)],
        }

    def _analyse(self, base: dict, cpu: dict, teacher: dict, students: list[dict], sent: dict) -> dict:
        seconds = cpu["seconds"]
        n = self.n
        fps, loss_fraction, kbps, audio_pps, latency, first_packet_latency = [], [], [], [], [], []
        probe_latency: list[float] = []
        screen_fps, screen_latency = [], []
        forwarded = video_packets = lost = expected = matched = received_frames = 0
        decoders = 0
        for s in students:
            r = s["received"]
            if r is None:
                fps.append(0.0)
                continue
            decoders += r["decoders"]
            slots = r["slots"]
            forwarded += sum(v["packets"] for v in slots.values())
            camera = slots.get("teacher_camera", {})
            fps.append(camera.get("frames", 0) / seconds)
            received_frames += camera.get("frames", 0)
            kbps.append(8 * camera.get("bytes", 0) / seconds / 1000)
            video_packets += camera.get("packets", 0)
            audio_pps.append(slots.get("teacher_audio", {}).get("packets", 0) / seconds)
            for slot in slots.values():
                lost += max(0, slot.get("lost", 0))
                expected += max(0, slot.get("expected", 0))
            if camera.get("expected"):
                loss_fraction.append(max(0, camera["lost"]) / camera["expected"])
            f, p, m = frame_latencies(sent.get("camera", []), r["logs"].get("teacher_camera", []))
            latency += f
            if s.get("probe"):
                probe_latency += f
            first_packet_latency += p
            matched += m
            if self.screen:
                screen_fps.append(slots.get("screen", {}).get("frames", 0) / seconds)
                screen_latency += frame_latencies(sent.get("screen", []), r["logs"].get("screen", []))[0]
        # the teacher receives the students' cameras (grid slots)
        grid = {}
        if teacher.get("received"):
            for name, slot in teacher["received"]["slots"].items():
                forwarded += slot["packets"]
                if name.startswith("grid_") and slot["frames"]:
                    grid[name] = round(slot["frames"] / seconds, 1)
        cost = cpu["server_core_fraction"] - base["server_core_fraction"]
        video_pps = video_packets / seconds / n if n else 0
        us_per_packet = 1e6 * cost * seconds / forwarded if forwarded else None
        return {
            "window_s": round(seconds, 2),
            "server": {
                "cpu_pct": round(100 * cpu["server_core_fraction"], 2),
                "cpu_teacher_only_pct": round(100 * base["server_core_fraction"], 2),
                "cpu_kernel_pct": round(100 * cpu["server_kernel_fraction"], 2),
                "cpu_outside_main_thread_pct": round(100 * cpu["server_outside_main_thread_fraction"], 2)
                if cpu.get("server_outside_main_thread_fraction") is not None
                else None,
                "cpu_per_student_pct": round(100 * cost / n, 3) if n else None,
                "forwarded_pps": round(forwarded / seconds),
                "us_per_forwarded_packet": round(us_per_packet, 2) if us_per_packet else None,
                "cpu_per_video_stream_pct": round(us_per_packet * video_pps / 1e4, 3) if us_per_packet else None,
                "rss_mb": round(cpu["rss"] / 1e6, 1),
                "rss_per_participant_mb": round((cpu["rss"] - base["rss"]) / 1e6 / n, 3) if n else None,
                "rss_per_participant_all_in_mb": round(
                    (cpu["rss"] / 1e6 - self.result["server_idle_rss_mb"]) / (n + 1), 3
                )
                if "server_idle_rss_mb" in self.result
                else None,
            },
            # Contention: the bench's own clients share the machine, and so does anything else running.
            "machine_load": {
                "clients_cpu_pct": round(100 * cpu["clients_core_fraction"], 1),
                "machine_busy_cores": round(cpu["machine_busy_cores"], 2),
                "other_processes_busy_cores": round(
                    max(0.0, cpu["machine_busy_cores"] - cpu["server_core_fraction"] - cpu["clients_core_fraction"]), 2
                ),
            },
            "students_view": {
                "fps": summary(fps, digits=2),
                "teacher_camera_kbps_median": round(statistics.median(kbps)) if kbps else None,
                "video_pps_per_student": round(video_pps, 1),
                "audio_pps_median": round(statistics.median(audio_pps), 1) if audio_pps else None,
                "loss_pct": round(100 * lost / expected, 3) if expected else 0.0,
                "worst_student_loss_pct": round(100 * max(loss_fraction), 3) if loss_fraction else 0.0,
                "frames_received": received_frames,
                "decoders_created": decoders,
                "errors": [s["error"] for s in students if s.get("error")][:5],
                **({"screen_fps": summary(screen_fps, digits=2)} if self.screen else {}),
            },
            "latency_ms": {
                **summary(latency, 1000, 2),
                "frames_matched": matched,
                "probe": summary(probe_latency, 1000, 2),
                "first_packet": summary(first_packet_latency, 1000, 2),
            },
            **({"screen_latency_ms": summary(screen_latency, 1000, 2)} if self.screen else {}),
            "publisher": _publisher(sent, teacher.get("publisher", {})),
            **({"teacher_receives_fps": grid} if self.cameras else {}),
        }

    async def _teardown(self) -> None:
        closing = [w.close() for w in [self.teacher, *self.workers] if w is not None]
        await asyncio.gather(*closing, return_exceptions=True)
        if self.server is not None:
            await self.server.stop()


def _window_summary(result: dict) -> dict:
    """The numbers of one window that the recording cost compares."""
    view, latency = result["students_view"], result["latency_ms"]
    return {
        "server_cpu_pct": result["server"]["cpu_pct"],
        "server_cpu_kernel_pct": result["server"]["cpu_kernel_pct"],
        "server_cpu_outside_main_thread_pct": result["server"].get("cpu_outside_main_thread_pct"),
        "server_rss_mb": result["server"]["rss_mb"],
        "fps_median": view["fps"]["median"],
        "fps_min": view["fps"]["min"],
        "loss_pct": view["loss_pct"],
        "latency_median_ms": latency["median"],
        "latency_p95_ms": latency["p95"],
        "latency_max_ms": latency["max"],
        "probe_latency_p95_ms": latency["probe"]["p95"],
        "frames_matched": latency["frames_matched"],
        "teacher_camera_sent_fps": result["publisher"].get("camera", {}).get("fps"),
        "teacher_camera_late_frames_total": result["publisher"].get("camera", {}).get("late_frames"),
        "teacher_keyframes": result.get("publisher_keyframes_in_window", {}).get("camera"),
        "clients_cpu_pct": result["machine_load"]["clients_cpu_pct"],
        "other_processes_busy_cores": result["machine_load"]["other_processes_busy_cores"],
    }


def _media_bytes(recordings: Path) -> int:
    """Bytes of the recordings' media files (WebM) under `recordings` (the space reserved at the
    start of a recording and the manifests are not counted)."""
    total = 0
    for path in recordings.rglob("*.webm"):
        try:
            total += path.stat().st_size
        except OSError:  # being renamed
            pass
    return total


def _recording_files(recordings: Path) -> dict:
    """The finished recording under the server's data directory: its manifest's files, each found
    on disk and not empty."""
    manifests = sorted(recordings.glob("*/*/manifest.json"))
    if len(manifests) != 1:
        return {"files_ok": False, "manifests_found": len(manifests), "files": [], "bytes": 0}
    manifest = json.loads(manifests[0].read_text())
    files = []
    for entry in manifest.get("files", []):
        path = manifests[0].parent / entry["file"]
        size = path.stat().st_size if path.exists() else 0
        files.append(
            {
                "file": entry["file"],
                "source": entry.get("source"),
                "kind": entry.get("kind"),
                "bytes_on_disk": size,
                "duration_ms": entry.get("duration_ms"),
                "frames": entry.get("frames"),
                "lost_packets": entry.get("lost_packets"),
                "dropped_frames": entry.get("dropped_frames"),
                "complete": entry.get("complete"),
            }
        )
    sources = sorted(f["source"] for f in files)
    return {
        "directory": str(manifests[0].parent.relative_to(recordings.parent.parent)),
        "finished": manifest.get("finished"),
        "stopped_reason": manifest.get("stopped_reason"),
        "duration_ms": manifest.get("duration_ms"),
        "sources": sources,
        "files": files,
        "bytes": sum(f["bytes_on_disk"] for f in files),
        "files_ok": bool(files) and all(f["bytes_on_disk"] > 0 for f in files) and bool(manifest.get("finished")),
    }


def _publisher(sent: dict, stats: dict) -> dict:
    out = {}
    for source, frames in sent.items():
        if not frames:
            continue
        span = max(f[2] for f in frames) - min(f[2] for f in frames)
        out[source] = {
            "fps": round((len(frames) - 1) / span, 1) if span > 0 else None,
            "kbps": round(8 * sum(f[3] for f in frames) / span / 1000) if span > 0 else None,
            "keyframes_total": stats.get(source, {}).get("keyframes"),
            "keyframe_requests_total": stats.get(source, {}).get("plis"),
            "late_frames": stats.get(source, {}).get("late_frames"),
        }
    return out


class Attempt(Protocol):
    """What _attempt runs: Scenario, ScaleOut, ChatScenario, WeakLinkScenario."""

    name: str
    dir: Path
    result: dict[str, Any]  # what it found so far (kept when it fails)

    async def run(self) -> dict: ...


async def _attempt(opts: Options, scenario: Attempt) -> dict:
    """Run a scenario; a failure is recorded (with where its logs are) and the run goes on."""
    try:
        return await scenario.run()
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not lose the others
        opts.progress(f"[{scenario.name}] FAILED: {type(exc).__name__}: {exc} (logs in {scenario.dir})")
        return {**scenario.result, "error": f"{type(exc).__name__}: {exc}", "logs": str(scenario.dir)}


async def run_all(opts: Options) -> dict:
    PRIORITY["nice"] = -5 if opts.priority else 0
    results: dict[str, Any] = {
        "tool": "liveclass bench",
        "format": 1,
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {
            "students": opts.students,
            "window_s": opts.window,
            "baseline_window_s": opts.baseline_window,
            "full_class": list(opts.full_class) if opts.full_class else None,
            "recording": list(opts.recording) if opts.recording else None,
            "relay_subscribers": opts.relay,
            "teacher_screen": opts.screen,
            "students_per_process": opts.per_process,
            "server_and_probe_nice": PRIORITY["nice"],
            "nodes": list(opts.nodes) if opts.nodes else None,
            "nodes_students": opts.nodes_students if opts.nodes else None,
            "nodes_ttl_s": opts.nodes_ttl if opts.nodes else None,
            "chat_students": opts.chat,
            "chat_window_s": opts.chat_window if opts.chat else None,
            "chat_bursts": opts.chat_bursts if opts.chat else None,
            "weak_link_minutes": opts.weak_link,
            "weak_link_class": list(opts.weak_link_class) if opts.weak_link else None,
            "weak_link_decoding_clean": opts.weak_link_decode if opts.weak_link else None,
        },
        "scenarios": [],
    }
    started = time.monotonic()
    results["machine"]["busy_cores_before_start"] = await busy_cores(2.0)
    if results["machine"]["busy_cores_before_start"] > 0.25:
        opts.progress(
            f"warning: other processes keep {results['machine']['busy_cores_before_start']} cores busy: "
            "the numbers will be disturbed"
        )
    # what every forwarded packet costs at least on this machine, measured while it is quiet
    from bench.profile import floor

    results["floor"] = await asyncio.to_thread(floor)
    for n in opts.students:
        results["scenarios"].append(await _attempt(opts, Scenario(opts, f"students-{n}", n, screen=opts.screen)))
    if opts.full_class:
        n, cameras = opts.full_class
        results["full_class"] = await _attempt(opts, Scenario(opts, "full-class", n, cameras=cameras, screen=True))
    if opts.recording:
        n, cameras = opts.recording
        results["recording_cost"] = await _attempt(
            opts, Scenario(opts, "full-class-recorded", n, cameras=cameras, screen=True, record=True)
        )
    if opts.relay:
        results["relay_baseline"] = await _attempt(
            opts, Scenario(opts, f"relay-{opts.relay}", opts.relay, mode="relay")
        )
    if opts.nodes:
        from bench.scaleout import ScaleOut

        results["scale_out"] = await _attempt(opts, ScaleOut(opts))
    if opts.chat:
        from bench.chat import STORES, ChatScenario

        results["chat"] = [await _attempt(opts, ChatScenario(opts, store)) for store in STORES]
    if opts.weak_link:
        from bench.weaklink import WeakLinkScenario

        students, weak = opts.weak_link_class
        results["weak_link"] = await _attempt(
            opts, WeakLinkScenario(opts, opts.weak_link, students, weak, opts.weak_link_decode)
        )
    run = None
    if opts.profile and (opts.full_class or opts.students):
        n, cameras = opts.full_class or (max(opts.students), 0)
        run = await _attempt(
            opts, Scenario(opts, "profile", n, cameras=cameras, screen=bool(opts.full_class), profile=opts.profile)
        )
        results["profile"] = {
            "scenario": f"{n} students, {cameras} student cameras" + (", teacher screen" if opts.full_class else ""),
            "join_storm": run.get("storm_profile"),
            "steady": run.get("steady_profile"),
            "storm": run.get("join_storm"),
            **({"error": run["error"]} if "error" in run else {}),
        }
    results["failed"] = [
        r["name"]
        for r in [
            *results["scenarios"],
            results.get("full_class"),
            results.get("recording_cost"),
            results.get("relay_baseline"),
            results.get("scale_out"),
            *results.get("chat", []),
            results.get("weak_link"),
            run,
        ]
        if r and "error" in r
    ]
    results["duration_s"] = round(time.monotonic() - started, 1)
    from bench.report import conclusions

    results.update(conclusions(results))
    return results


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
