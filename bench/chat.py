"""The chat scenario (`liveclass bench --chat N`): what a chat acknowledgement costs now that an `ok`
waits until the records it produced are committed (liveclass/records.py, group commit).

For each store, one after another — SQLite (the embedded default, in a fresh data directory) and
PostgreSQL (a fresh database next to `--postgres`, migrated with `liveclass db upgrade`):
1. a real `liveclass serve` on 127.0.0.1, seeded with a teacher, N students and a period running now;
2. the teacher starts the period and enters; the students wait in the lobby and are admitted at once.
   Socket.IO only: nobody publishes or subscribes media;
3. steady chat: every student sends chat:send every STUDENT_INTERVAL s (under the limit of 5 per 10 s),
   their first messages spread evenly over one interval, and the teacher one every TEACHER_INTERVAL s,
   for the window; the server's CPU is measured over it;
4. bursts: every student sends one message at the same instant, a few times, BURST_GAP s apart (each
   student's messages stay at least STUDENT_INTERVAL s apart, so none is rate-limited);
5. the last word: the teacher sends one more message, and the server is killed (SIGKILL) as soon as
   its answer is in, so that nothing a clean shutdown or a later periodic write would still store
   counts; every acknowledged message_id (that one too) is then looked up in chat_messages (sqlite3
   / asyncpg): a missing one is a lost message. On PostgreSQL each row's xmin also tells which
   transaction wrote it, so the group commits can be counted.
The latency is the time from emitting chat:send to receiving its answer, in the sender's process.
Everything is stopped, and the database dropped, at the end, also after a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from bench.cluster import FreshDatabase
from bench.peers import now
from bench.runner import (
    PASSWORD,
    Options,
    ServerProcess,
    Worker,
    cpu_seconds,
    measure_cpu,
    processes,
    seed,
    seed_classes,
    start_liveclass,
    summary,
)

STORES = ("sqlite", "postgresql")
STUDENT_INTERVAL = 2.5  # seconds between two messages of a student in the steady window (limit: 5 per 10 s)
TEACHER_INTERVAL = 1.0  # the teacher is not rate-limited
BURST_GAP = 3.0  # seconds from the end of one phase (every answer in) to the next burst (>= STUDENT_INTERVAL)
PHASE_TIMEOUT = 60.0  # seconds a phase's answers may take beyond its last scheduled message
CPU_SPAN = 0.1  # psutil counts CPU time in 10 ms ticks: a burst answered sooner has no CPU share


def _every(start: float, end: float, interval: float) -> list[float]:
    """start, start + interval, ... before end."""
    return [start + k * interval for k in range(max(0, math.ceil((end - start) / interval)))]


def _stored_sqlite(path: Path, session_id: int) -> dict[str, str | None]:
    """The message ids (no transaction: None)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {row[0]: None for row in db.execute("SELECT id FROM chat_messages WHERE session_id = ?", (session_id,))}


async def _stored_postgresql(dsn: str, session_id: int) -> dict[str, str | None]:
    """Each row's xmin: the transaction that inserted it (the group commits can be counted)."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT id, xmin::text AS tx FROM chat_messages WHERE session_id = $1", session_id
        )
    finally:
        await connection.close()
    return {row["id"]: row["tx"] for row in rows}


def _phase(records: list[dict], stored: dict[str, str | None]) -> dict:
    """Messages sent, acknowledged `ok`, refused or unanswered (by code), the acknowledgements'
    latency (ms) of one phase, and how many transactions wrote its messages (PostgreSQL)."""
    acknowledged = [r for r in records if r["message_id"]]
    transactions = {stored[r["message_id"]] for r in acknowledged if stored.get(r["message_id"])}
    return {
        "sent": len(records),
        "acknowledged": len(acknowledged),
        "not_acknowledged": dict(Counter(r["error"] for r in records if not r["message_id"])),
        "ack_ms": summary([r["ack_s"] for r in acknowledged], 1000, 2),
        "transactions": len(transactions) or None,
    }


def _burst_numbers(burst: dict) -> dict:
    """One burst: its first and last answer, and how busy the server and the clients were until the last."""
    acks = [r["ack_s"] for r in burst["records"] if r["message_id"]]
    seconds = burst["seconds"]
    measured = seconds >= CPU_SPAN
    return {
        "first_answer_ms": round(1000 * min(acks), 2) if acks else None,
        "last_answer_ms": round(1000 * seconds, 2),
        "server_cpu_ms": round(1000 * burst["server_cpu_s"], 1),
        "server_busy_pct": round(100 * burst["server_cpu_s"] / seconds, 1) if measured else None,
        "clients_busy_cores": round(burst["clients_cpu_s"] / seconds, 2) if measured else None,
    }


class ChatScenario:
    """One store's run: see the module's docstring."""

    def __init__(self, opts: Options, store: str) -> None:
        assert opts.chat is not None, "made only with --chat N"
        self.opts, self.store, self.n = opts, store, opts.chat
        self.name = f"chat-{store}"
        self.dir = opts.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.dir / "data"
        self.database = FreshDatabase(opts.postgres) if store == "postgresql" else None
        self.server: ServerProcess | None = None
        self.teacher: Worker | None = None
        self.workers: list[Worker] = []
        self.placement: list[tuple[Worker, int]] = []  # student i -> (worker, index in the worker)
        self.session_id: int | None = None
        self.result: dict[str, Any] = {
            "name": self.name,
            "store": store,
            "students": self.n,
            "steady_window_s": opts.chat_window,
            "bursts_planned": opts.chat_bursts,
            **({"database": self.database.name} if self.database else {}),
        }

    def say(self, text: str) -> None:
        self.opts.progress(f"[{self.name}] {text}")

    def _server(self) -> ServerProcess:
        """The server (set by _run)."""
        assert self.server is not None, "the server first"
        return self.server

    def _teacher(self) -> Worker:
        """The teacher's worker (set by _start_workers)."""
        assert self.teacher is not None, "_start_workers first"
        return self.teacher

    def _session_id(self) -> int:
        """The session the teacher started (set by _seat)."""
        assert self.session_id is not None, "_seat first"
        return self.session_id

    async def run(self) -> dict:
        try:
            await self._run()
        finally:
            await self._teardown()
        return self.result

    async def _run(self) -> None:
        self.say(f"a teacher and {self.n} students chatting, {self.store}")
        # both finished, whatever happens to the other (the teardown closes the workers that started)
        prepared, started = await asyncio.gather(self._prepare_store(), self._start_workers(), return_exceptions=True)
        for outcome in (prepared, started):
            if isinstance(outcome, BaseException):
                raise outcome
        accounts, env = prepared
        self.server, base_url = await start_liveclass(self.data_dir, self.dir / "server.log", env=env)
        await self._seat(base_url, accounts)
        steady = await self._steady()
        bursts = await self._bursts()
        last = await self._last_word()
        stored = await self._stored()
        self.result.update(self._analyse(steady, bursts, last, stored))
        lost, all_ms = self.result["stored"]["lost"], self.result["all"]["ack_ms"]
        self.say(
            f"{self.result['all']['acknowledged']} acknowledged: p50 {all_ms['median']} ms, "
            f"p95 {all_ms['p95']} ms, max {all_ms['max']} ms; {lost} lost"
        )

    # ------------------------------------------------------------------------------------ set-up
    async def _prepare_store(self) -> tuple[dict, dict[str, str]]:
        """The store migrated and seeded (one class of N students): the accounts, and the server's
        settings that point it at the store."""
        if self.database is None:
            return await seed(self.data_dir, self.n), {}
        await self.database.create(self.data_dir)
        accounts = (await seed_classes(self.database.url, 1, self.n))[0]
        return accounts, {"LIVECLASS_DATABASE_URL": self.database.url}

    async def _start_workers(self) -> None:
        """The teacher's worker process and the students' (`per_process` students each)."""
        groups = max(1, -(-self.n // self.opts.per_process))
        starting = [Worker.start("teacher", "teacher", self.dir / "teacher.log")]
        starting += [Worker.start("students", f"students-{g}", self.dir / f"students-{g}.log") for g in range(groups)]
        started = await asyncio.gather(*starting, return_exceptions=True)
        self.workers = [w for w in started[1:] if not isinstance(w, BaseException)]
        self.teacher = None if isinstance(started[0], BaseException) else started[0]
        failed = [w for w in started if isinstance(w, BaseException)]
        if failed:  # (those that started are closed by the teardown)
            raise failed[0]

    async def _seat(self, base_url: str, accounts: dict) -> None:
        """The workers log everyone in; the teacher starts the period and enters; the students enter
        the lobby and are admitted at once."""
        per_worker: list[list[dict]] = [[] for _ in self.workers]
        for i, account in enumerate(accounts["students"]):  # round robin: each worker's students spread in time
            g = i % len(self.workers)
            self.placement.append((self.workers[g], len(per_worker[g])))
            per_worker[g].append(account)
        started_period, *_ = await asyncio.gather(
            self._teacher().call(
                "start",
                base_url=base_url,
                personal_id=accounts["teacher"]["personal_id"],
                password=PASSWORD,
                period_id=accounts["period_id"],
                timeout=60,
            ),
            *(
                w.call("init", mode="liveclass", base_url=base_url, accounts=a, media=False, timeout=120)
                for w, a in zip(self.workers, per_worker)
            ),
        )
        self.session_id = started_period["session_id"]
        await self._teacher().call("enter", media=False, timeout=60)
        await asyncio.gather(*(w.call("enter", session_id=self.session_id, timeout=120) for w in self.workers))
        await self._teacher().call("wait_lobby", count=self.n, within=60, timeout=70)
        admitted = await self._teacher().call("admit_all", timeout=60)
        await asyncio.gather(*(w.call("wait_admitted", within=60, timeout=70) for w in self.workers))
        self.say(f"{admitted['admitted']} admitted")

    # ------------------------------------------------------------------------------------ phases
    async def _steady(self) -> dict:
        """Every student every STUDENT_INTERVAL s, the teacher every TEACHER_INTERVAL s, for the window;
        the server's CPU over it."""
        window = self.opts.chat_window
        start = now() + 0.5  # every worker has its schedule before the first message
        end = start + window
        times = [_every(start + STUDENT_INTERVAL * (i + 0.5) / self.n, end, STUDENT_INTERVAL) for i in range(self.n)]
        self.say(
            f"steady chat for {window:g} s: {sum(map(len, times))} student messages, "
            f"{len(_every(start, end, TEACHER_INTERVAL))} from the teacher"
        )
        cpu, teacher, students = await asyncio.gather(
            measure_cpu(self._server(), [self._teacher(), *self.workers], start, end),
            self._teacher().call(
                "chat",
                times=_every(start + TEACHER_INTERVAL / 2, end, TEACHER_INTERVAL),
                timeout=window + PHASE_TIMEOUT,
            ),
            self._students_chat(times, timeout=window + PHASE_TIMEOUT),
        )
        return {"cpu": cpu, "teacher": teacher["sent"], "students": students}

    async def _bursts(self) -> list[dict]:
        """opts.chat_bursts times: every student sends one message at the same instant, BURST_GAP s
        after every answer of the phase before came in."""
        bursts = []
        for b in range(self.opts.chat_bursts):
            bursts.append(await self._burst(now() + BURST_GAP))
            self.say(
                f"burst {b + 1}: {self.n} messages at once, the last answered after "
                f"{1000 * bursts[-1]['seconds']:.1f} ms"
            )
        return bursts

    async def _burst(self, at: float) -> dict:
        """Every student sends one message at `at`: the records, the time until the last answer, and
        the CPU seconds the server and the clients used from `at` until then."""
        clients = processes([self._teacher(), *self.workers])

        async def cpu_at(t: float) -> tuple[float, float]:
            await asyncio.sleep(max(0.0, t - now()))
            return self._server().cpu(), cpu_seconds(clients)

        (server0, clients0), records = await asyncio.gather(
            cpu_at(at), self._students_chat([[at]] * self.n, timeout=BURST_GAP + PHASE_TIMEOUT)
        )
        server1, clients1 = self._server().cpu(), cpu_seconds(clients)
        answered = [r["t"] + r["ack_s"] for r in records if r["ack_s"] is not None]
        return {
            "records": records,
            "seconds": max(answered, default=at) - at,
            "server_cpu_s": server1 - server0,
            "clients_cpu_s": clients1 - clients0,
        }

    async def _last_word(self) -> list[dict]:
        """The teacher sends one more message, and the server gets SIGKILL as soon as its answer is in
        (a few ms later: sooner than a periodic write would have stored it). Its record, and every
        other one, must be in the store all the same. (The teacher is not rate-limited: no pause.)"""
        sent = (await self._teacher().call("chat", times=[now()], text="Hết giờ", timeout=PHASE_TIMEOUT))["sent"]
        self._server().popen.kill()
        killed = now()
        await asyncio.to_thread(self._server().popen.wait, 10)
        answered = [r["t"] + r["ack_s"] for r in sent if r["ack_s"] is not None]
        self.result["killed_after_last_answer_ms"] = round(1000 * (killed - answered[0]), 2) if answered else None
        return sent

    async def _students_chat(self, times: list[list[float]], timeout: float) -> list[dict]:
        """Student i sends at times[i]; every student's records, in one list."""
        calls = []
        for worker in self.workers:
            mine = [(i, index) for i, (w, index) in enumerate(self.placement) if w is worker]
            calls.append(
                worker.call(
                    "chat", which=[index for _, index in mine], times=[times[i] for i, _ in mine], timeout=timeout
                )
            )
        answers = await asyncio.gather(*calls)
        return [record for answer in answers for student in answer["students"] for record in student["sent"]]

    async def _stored(self) -> dict[str, str | None]:
        """The message ids in chat_messages for the session, read with the store's own client, each
        with the transaction that wrote it (PostgreSQL's xmin; None on SQLite)."""
        if self.database is None:
            return await asyncio.to_thread(_stored_sqlite, self.data_dir / "liveclass.db", self._session_id())
        return await _stored_postgresql(self.database.dsn, self._session_id())

    # ------------------------------------------------------------------------------------ numbers
    def _analyse(self, steady: dict, bursts: list[dict], last: list[dict], stored: dict[str, str | None]) -> dict:
        every_burst = [r for burst in bursts for r in burst["records"]]
        everything = [*steady["students"], *steady["teacher"], *every_burst]
        acknowledged = {r["message_id"] for r in [*everything, *last] if r["message_id"]}
        lost = sorted(acknowledged - set(stored))
        return {
            "steady": self._steady_numbers(steady, stored),
            "bursts": {
                **_phase(every_burst, stored),
                "count": len(bursts),
                "size": self.n,
                "each": [_burst_numbers(burst) for burst in bursts],
            },
            "all": _phase(everything, stored),
            "stored": {
                "server_stopped": "SIGKILL right after the last answer",
                "rows": len(stored),
                "acknowledged": len(acknowledged),
                "lost": len(lost),
                "lost_ids": lost[:5],
                "stored_without_ok": len(set(stored) - acknowledged),
                "last_message": {
                    "acknowledged": bool(last and last[0]["message_id"]),
                    "stored": bool(last and last[0]["message_id"] in stored),
                },
            },
        }

    @staticmethod
    def _steady_numbers(steady: dict, stored: dict[str, str | None]) -> dict:
        cpu, window = steady["cpu"], steady["cpu"]["seconds"]
        records = steady["students"] + steady["teacher"]
        return {
            **_phase(records, stored),
            "messages_per_s": round(len(records) / window, 1),
            "students_ack_ms": _phase(steady["students"], stored)["ack_ms"],
            "teacher_ack_ms": _phase(steady["teacher"], stored)["ack_ms"],
            "server_cpu_pct": round(100 * cpu["server_core_fraction"], 1),
            "server_cpu_kernel_pct": round(100 * cpu["server_kernel_fraction"], 1),
            "server_cpu_ms_per_message": round(1000 * cpu["server_core_fraction"] * window / len(records), 2)
            if records
            else None,
            "clients_cpu_pct": round(100 * cpu["clients_core_fraction"], 1),
            "other_processes_busy_cores": round(
                max(0.0, cpu["machine_busy_cores"] - cpu["server_core_fraction"] - cpu["clients_core_fraction"]), 2
            ),
        }

    # ------------------------------------------------------------------------------------ teardown
    async def _teardown(self) -> None:
        """Every client process, the server, the database: each step tried whatever happened before."""
        workers = [w for w in [self.teacher, *self.workers] if w is not None]
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        problems = []
        steps = ([self.server.stop] if self.server else []) + ([self.database.drop] if self.database else [])
        for step in steps:
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - reported, the next step still runs
                problems.append(f"{step.__qualname__}: {type(exc).__name__}: {exc}")
        if problems:
            self.result["cleanup_errors"] = problems
            self.say(f"cleanup: {'; '.join(problems)}")
