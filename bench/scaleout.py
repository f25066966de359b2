"""The scale-out scenario (`liveclass bench --nodes N:C`): C classes on N node processes.

1. A cluster (cluster.py): a fresh PostgreSQL database, a Redis prefix, N `liveclass serve` nodes.
2. C classes seeded (a teacher, S students, a period running now each); the teachers start their
   periods one after another through the first node, and the bench checks that the placement spread
   them evenly (GET /nodes, as an administrator sees it).
3. The first class alone, on its node: that node's CPU is what one process needs for one class.
4. Every class at once: each node's CPU per class against the class alone, every student's fps.
5. SIGKILL of the node hosting the most classes: each of its teachers and students asks /join again
   through a live node, connects where it says with the seat's resume token, publishes or subscribes
   again; the time from the kill to each student's first teacher-camera RTP packet (and first
   complete keyframe) is the failover time. It includes the node TTL.
6. Every class again, on the nodes left.

The teachers' cameras are replayed (a pre-encoded 1 Mbit/s 30 fps VP8 loop, restarting at its
keyframe on every PLI) rather than encoded live: four live encoders would take a core of this
machine from the nodes. The nodes forward the same packets either way.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.client import Participant
from bench.cluster import Cluster, Node
from bench.peers import now
from bench.runner import (
    PASSWORD,
    Options,
    Worker,
    _busy,
    cpu_seconds,
    processes,
    seed_admin,
    seed_classes,
    summary,
)

TEACHER = {"camera": "replay", "screen": False, "subscribe": True}
FAILOVER_WAIT = 30.0  # seconds after the TTL that the killed node's people get to come back


@dataclass
class BenchClass:
    index: int
    accounts: dict
    teacher: Worker | None = None
    seats: list[tuple[Worker, int]] = field(default_factory=list)  # student -> (worker, index in it)
    session_id: int | None = None
    node: str | None = None  # the node hosting the room (node id)

    def teacher_worker(self) -> Worker:
        """The teacher's worker (set by ScaleOut._start_clients)."""
        assert self.teacher is not None, "_start_clients first"
        return self.teacher

    def by_worker(self) -> dict[Worker, list[int]]:
        out: dict[Worker, list[int]] = {}
        for worker, index in self.seats:
            out.setdefault(worker, []).append(index)
        return out


class ScaleOut:
    name = "scale-out"

    def __init__(self, opts: Options) -> None:
        assert opts.nodes is not None, "made only with --nodes"
        self.opts = opts
        self.n_nodes, self.n_classes = opts.nodes
        self.size = opts.nodes_students
        self.dir = opts.workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cluster = Cluster(self.dir, postgres=opts.postgres, redis=opts.redis, ttl=opts.nodes_ttl)
        self.classes: list[BenchClass] = []
        self.workers: list[Worker] = []  # student workers (several classes each)
        self.admin: Participant | None = None
        self.result: dict[str, Any] = {
            "name": self.name,
            "nodes": self.n_nodes,
            "classes": self.n_classes,
            "students_per_class": self.size,
            "node_ttl_s": opts.nodes_ttl,
            "teacher_camera": "replayed 640x360 VP8 loop, 30 fps, ~1 Mbit/s",
            "database": self.cluster.database,
            "redis_prefix": self.cluster.prefix,
        }

    def say(self, text: str) -> None:
        self.opts.progress(f"[{self.name}] {text}")

    def _admin(self) -> Participant:
        """The administrator, logged in (by _start_cluster)."""
        assert self.admin is not None, "_start_cluster first"
        return self.admin

    async def run(self) -> dict:
        try:
            await self._run()
        finally:
            await self._teardown()
        return self.result

    async def _run(self) -> None:
        self.say(
            f"{self.n_nodes} nodes (PostgreSQL {self.cluster.database}, Redis prefix {self.cluster.prefix}), "
            f"{self.n_classes} classes of {self.size} students"
        )
        await self._start_cluster()
        await self._start_clients()
        await self._starts_together()
        await self._place()
        first, others = self.classes[0], self.classes[1:]
        self.say(f"class 1 alone on node {first.node}")
        await self._enter([first])
        self.result["one_process_alone"] = await self._window([first])
        self.say(f"every class: {self.n_classes - 1} more")
        await self._enter(others)
        self.result["all_classes"] = self._compare(await self._window(self.classes), self.result["one_process_alone"])
        await self._failover()
        self.say("every class again, on the nodes left")
        self.result["after_failover"] = self._compare(
            await self._window(self.classes), self.result["one_process_alone"]
        )

    # ------------------------------------------------------------------------------------ set-up
    async def _start_cluster(self) -> None:
        await self.cluster.create()
        url = self.cluster.database_url
        accounts = await seed_classes(url, self.n_classes, self.size)
        self.classes = [BenchClass(i, a) for i, a in enumerate(accounts)]
        admin = await seed_admin(url)
        nodes = await self.cluster.start_nodes(self.n_nodes)
        self.admin = Participant(nodes[0].url, admin["personal_id"], admin["password"])
        await self.admin.login()
        live = [n for n in await self._nodes_view() if n["state"] == "live"]
        if len(live) != self.n_nodes:
            raise RuntimeError(f"GET /nodes lists {len(live)} live nodes of {self.n_nodes}")

    async def _start_clients(self) -> None:
        """One teacher process per class; the students of every class packed into processes of
        `per_process`. Everyone logs in through the first node (a reverse proxy's choice)."""
        front = self.cluster.nodes[0].url
        seats = [(c, account) for c in self.classes for account in c.accounts["students"]]
        chunks = [seats[i : i + self.opts.per_process] for i in range(0, len(seats), self.opts.per_process)]
        starting = [
            Worker.start("teacher", f"teacher-{c.index + 1}", self.dir / f"teacher-{c.index + 1}.log")
            for c in self.classes
        ]
        starting += [
            Worker.start("students", f"students-{g}", self.dir / f"students-{g}.log") for g in range(len(chunks))
        ]
        started = await asyncio.gather(*starting, return_exceptions=True)
        for c, teacher in zip(self.classes, started):
            c.teacher = None if isinstance(teacher, BaseException) else teacher
        self.workers = [w for w in started[len(self.classes) :] if not isinstance(w, BaseException)]
        failed = [e for e in started if isinstance(e, BaseException)]
        if failed:  # (those that started are closed by the teardown)
            raise failed[0]
        for worker, chunk in zip(self.workers, chunks):
            for index, (c, _) in enumerate(chunk):
                c.seats.append((worker, index))
        await asyncio.gather(
            *(
                w.call("init", mode="liveclass", base_url=front, accounts=[a for _, a in chunk], timeout=120)
                for w, chunk in zip(self.workers, chunks)
            )
        )

    async def _starts_together(self) -> None:
        """Placement when every teacher starts at the same moment (the bell), the requests spread
        over the nodes as a round-robin proxy would: recorded, then every period ended again, so that
        the measured classes start from an empty cluster."""
        nodes = self.cluster.nodes
        teachers = [
            Participant(nodes[c.index % len(nodes)].url, c.accounts["teacher"]["personal_id"], PASSWORD)
            for c in self.classes
        ]
        try:
            await asyncio.gather(*(t.login() for t in teachers))
            started = await asyncio.gather(
                *(t.start_period(c.accounts["period_id"]) for t, c in zip(teachers, self.classes))
            )
        finally:
            await asyncio.gather(*(t.close() for t in teachers))
        for c in self.classes:
            await self._admin().request("POST", f"/periods/{c.accounts['period_id']}/end")
        counts = Counter(s["node"] for s in started)
        per_node = {n.node_id: counts.get(n.node_id, 0) for n in nodes}
        self.result["placement_started_together"] = {
            "classes_per_node": per_node,
            "spread": max(per_node.values()) - min(per_node.values()),
        }
        self.say(f"placement of {len(started)} periods started at the same moment: {per_node}")
        left = [n for n in await self._nodes_view() if n["sessions"]]
        if left:
            raise RuntimeError(f"ended sessions still placed: {left}")

    async def _place(self) -> None:
        """Each teacher starts its period (one after another, as teachers arriving over a minute
        would); the answers say where each was placed, GET /nodes must agree, and be even."""
        front = self.cluster.nodes[0].url
        for c in self.classes:
            started = await c.teacher_worker().call(
                "start",
                base_url=front,
                personal_id=c.accounts["teacher"]["personal_id"],
                password=PASSWORD,
                period_id=c.accounts["period_id"],
                timeout=60,
            )
            c.session_id, c.node = started["session_id"], started["node"]
        view = await self._nodes_view()
        hosted = {n["node_id"]: sorted(n["sessions"]) for n in view}
        per_node = {n.node_id: len(hosted.get(n.node_id, [])) for n in self.cluster.nodes}
        answered = Counter(c.node for c in self.classes)
        self.result["placement"] = {
            "classes_per_node": per_node,
            "even": max(per_node.values()) - min(per_node.values()) <= 1,
            "spread": max(per_node.values()) - min(per_node.values()),
            "start_answers_agree": all(answered[node] == count for node, count in per_node.items()),
            "sessions": {n: s for n, s in hosted.items()},
        }
        self.say(f"placement: {per_node}")

    async def _nodes_view(self) -> list[dict]:
        return (await self._admin().request("GET", "/nodes"))["items"]

    async def _enter(self, classes: list[BenchClass]) -> None:
        """The classes' teachers enter and publish; their students wait in the lobby, are admitted
        at once and subscribe; every student has a first teacher frame, or this fails."""
        if not classes:
            return
        entered = await asyncio.gather(*(c.teacher_worker().call("enter", **TEACHER, timeout=60) for c in classes))
        for c, answer in zip(classes, entered):
            if answer["node"] != c.node:
                raise RuntimeError(f"class {c.index + 1}: /join named {answer['node']}, the start {c.node}")
        await asyncio.gather(
            *(
                w.call("enter", session_id=c.session_id, which=which, timeout=120)
                for c in classes
                for w, which in c.by_worker().items()
            )
        )
        await asyncio.gather(
            *(c.teacher_worker().call("wait_lobby", count=self.size, within=60, timeout=70) for c in classes)
        )
        await asyncio.gather(*(c.teacher_worker().call("admit_all") for c in classes))
        reports = await asyncio.gather(
            *(
                w.call("wait_media", which=which, within=60, timeout=70)
                for c in classes
                for w, which in c.by_worker().items()
            )
        )
        students = [s for r in reports for s in r["students"]]
        missing = [s for s in students if s["t_first_frame"] is None]
        if missing:
            raise RuntimeError(f"{len(missing)} students without a first frame: {missing[0].get('error')}")
        await asyncio.sleep(self.opts.settle)

    # ------------------------------------------------------------------------------- measuring
    async def _window(self, classes: list[BenchClass]) -> dict:
        """One window of opts.window seconds: each live node's CPU, the clients' and the machine's,
        and every student's teacher-camera fps and loss."""
        start = now() + 0.3
        end = start + self.opts.window
        calls = [(c, w, which) for c in classes for w, which in c.by_worker().items()]
        cpu, *windows = await asyncio.gather(
            self._measure_cpu(classes, start, end),
            *(
                w.call("window", start=start, end=end, which=which, log_slots=[], timeout=self.opts.window + 60)
                for _, w, which in calls
            ),
        )
        seconds = cpu["seconds"]
        fps: dict[int, list[float]] = {c.index: [] for c in classes}
        lost = expected = 0
        for (c, _, _), window in zip(calls, windows):
            for student in window["students"]:
                camera = ((student["received"] or {}).get("slots") or {}).get("teacher_camera", {})
                fps[c.index].append(camera.get("frames", 0) / seconds)
                lost += max(0, camera.get("lost", 0))
                expected += max(0, camera.get("expected", 0))
        every = [f for values in fps.values() for f in values]
        hosting = Counter(c.node for c in classes)
        nodes = [
            {
                "node": node_id,
                "name": self.cluster.node(node_id).name,
                "classes": hosting.get(node_id, 0),
                "cpu_pct": round(100 * fraction, 2),
                "cpu_per_class_pct": round(100 * fraction / hosting[node_id], 2) if hosting.get(node_id) else None,
                "rss_mb": round(cpu["rss"][node_id] / 1e6, 1),
            }
            for node_id, fraction in cpu["nodes"].items()
        ]
        return {
            "window_s": round(seconds, 2),
            "classes_measured": len(classes),
            "nodes": nodes,
            "fps": summary(every, digits=2),
            "fps_per_student": [round(f, 2) for f in every],
            "fps_min_per_class": {str(i + 1): round(min(v), 2) for i, v in fps.items() if v},
            "students_below_29_fps": sum(f < 29 for f in every),
            "teacher_camera_loss_pct": round(100 * lost / expected, 3) if expected else 0.0,
            "machine_load": {
                "clients_cpu_pct": round(100 * cpu["clients"], 1),
                "machine_busy_cores": round(cpu["machine"], 2),
                "other_processes_busy_cores": round(
                    max(0.0, cpu["machine"] - cpu["clients"] - sum(cpu["nodes"].values())), 2
                ),
            },
        }

    async def _measure_cpu(self, classes: list[BenchClass], start: float, end: float) -> dict:
        """CPU (fraction of one core) of each live node process, of the bench's clients, of the machine."""
        nodes = [n for n in self.cluster.nodes if n.alive]
        clients = processes([*(c.teacher_worker() for c in classes), *self.workers])
        await asyncio.sleep(max(0.0, start - now()))
        n0, k0, m0, t0 = _node_cpu(nodes), cpu_seconds(clients), psutil.cpu_times(), now()
        await asyncio.sleep(max(0.0, end - now()))
        n1, k1, m1, t1 = _node_cpu(nodes), cpu_seconds(clients), psutil.cpu_times(), now()
        seconds = t1 - t0
        return {
            "seconds": seconds,
            "nodes": {n: (n1[n] - n0[n]) / seconds for n in n0},
            "rss": {n.node_id: n.server.rss() for n in nodes},
            "clients": (k1 - k0) / seconds,
            "machine": (_busy(m1) - _busy(m0)) / seconds,
        }

    @staticmethod
    def _compare(window: dict, alone: dict) -> dict:
        """Each node's CPU per class against the one node hosting one class alone."""
        base = next(n["cpu_pct"] for n in alone["nodes"] if n["classes"])
        for node in window["nodes"]:
            per_class = node["cpu_per_class_pct"]
            node["ratio_to_one_process_alone"] = round(per_class / base, 3) if per_class and base else None
        ratios = [n["ratio_to_one_process_alone"] for n in window["nodes"] if n["ratio_to_one_process_alone"]]
        window["one_process_alone_cpu_pct"] = base
        window["max_ratio_to_one_process_alone"] = max(ratios) if ratios else None
        return window

    # -------------------------------------------------------------------------------- failover
    async def _failover(self) -> None:
        """SIGKILL of the node with the most classes (not the first, which stands for the address
        everyone uses); its classes' people come back through the first node."""
        hosting = Counter(c.node for c in self.classes)
        candidates = [n for n in self.cluster.nodes[1:] if hosting.get(n.node_id)]
        victim = max(candidates, key=lambda n: hosting[n.node_id]) if candidates else self.cluster.nodes[-1]
        front = self.cluster.nodes[0]
        moved = [c for c in self.classes if c.node == victim.node_id]
        # No room moved during the measurements (a node too busy to beat in time would lose its rooms).
        hosted = {n["node_id"]: n["sessions"] for n in await self._nodes_view()}
        self.result["placement_unchanged_before_kill"] = all(
            c.session_id in hosted.get(c.node, []) for c in self.classes
        )
        self.say(f"SIGKILL of node {victim.name} ({victim.node_id}, {len(moved)} classes); TTL {self.cluster.ttl:g} s")
        t_kill = now()
        self.cluster.kill(victim)
        deadline = t_kill + self.cluster.ttl + FAILOVER_WAIT
        rejoining = [
            c.teacher_worker().call(
                "rejoin",
                base_url=front.url,
                deadline=deadline,
                **TEACHER,
                timeout=self.cluster.ttl + FAILOVER_WAIT + 30,
            )
            for c in moved
        ]
        rejoining += [
            w.call("rejoin", base_url=front.url, deadline=deadline, which=which)
            for c in moved
            for w, which in c.by_worker().items()
        ]
        teachers = (await asyncio.gather(*rejoining))[: len(moved)]
        reports = await asyncio.gather(
            *(
                w.call("wait_media", which=which, within=max(0.0, deadline - now()) + 5, timeout=deadline - now() + 30)
                for c in moved
                for w, which in c.by_worker().items()
            )
        )
        students = [s for r in reports for s in r["students"]]
        for c, teacher in zip(moved, teachers):
            c.node = teacher.get("node", c.node)
        view = await self._nodes_view()
        self.result["failover"] = _failover_result(victim, t_kill, moved, teachers, students, view, self.size)
        f = self.result["failover"]
        media = f["media_back_s"]
        self.say(
            f"{f['students_back']} of {f['students']} students back; media again after "
            f"p50 {media['median']} s, p95 {media['p95']} s, max {media['max']} s"
        )
        if f["students_back"] < f["students"] or f["teachers_back"] < len(moved):
            raise RuntimeError(f"not everyone came back after the kill: {f['errors']}")

    # -------------------------------------------------------------------------------- teardown
    async def _teardown(self) -> None:
        """Clients leave, the periods end (so that no node hands rooms over while stopping), the
        nodes stop, the database and the Redis keys go."""
        workers = [c.teacher for c in self.classes if c.teacher] + self.workers
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        if self.admin is not None:
            live = next((n for n in self.cluster.nodes if n.alive), None)
            if live is not None:
                self.admin.base_url = live.url
                for c in self.classes:
                    try:
                        await asyncio.wait_for(
                            self.admin.request("POST", f"/periods/{c.accounts['period_id']}/end"), 10
                        )
                    except Exception:  # noqa: BLE001 - not started, or its node is gone: stopping anyway
                        pass
            await self.admin.close()
        problems = await self.cluster.close()
        if problems:
            self.result["cleanup_errors"] = problems
            self.say(f"cleanup: {'; '.join(problems)}")


def _node_cpu(nodes: list[Node]) -> dict[str, float]:
    return {n.node_id: n.server.cpu() for n in nodes}


def _failover_result(
    victim: Node,
    t_kill: float,
    moved: list[BenchClass],
    teachers: list[dict],
    students: list[dict],
    view: list[dict],
    size: int,
) -> dict:
    """What the killed node's people went through, each time counted from the kill."""

    def since_kill(key: str) -> list[float]:
        return [s[key] - t_kill for s in students if s.get(key) is not None]

    media = since_kill("t_first_packet")
    refusals: Counter = Counter()
    for person in [*teachers, *students]:
        refusals.update(person.get("refusals") or {})
    attempts = [s["rejoined"]["attempts"] for s in students if s.get("rejoined")]
    hosted = {n["node_id"]: n for n in view}
    return {
        "killed_node": victim.node_id,
        "classes_moved": len(moved),
        "moved_to": {str(c.session_id): c.node for c in moved},
        "sessions_now_on_live_nodes": all(
            hosted.get(c.node, {}).get("state") == "live" and c.session_id in hosted[c.node]["sessions"] for c in moved
        ),
        "killed_node_state": hosted.get(victim.node_id, {}).get("state"),
        "students": len(moved) * size,
        "students_back": len(media),
        "teachers_back": sum(1 for t in teachers if t.get("t_published")),
        # to the first RTP packet of the teacher's camera, then to its first complete keyframe
        "media_back_s": summary(media),
        "first_frame_back_s": summary(since_kill("t_first_frame")),
        "room_state_back_s": summary(since_kill("t_admitted")),  # connected again, in the room
        "teacher_back_s": summary([t["t_back"] - t_kill for t in teachers if t.get("t_back")]),
        "teacher_published_s": summary([t["t_published"] - t_kill for t in teachers if t.get("t_published")]),
        "join_attempts": {"median": statistics.median(attempts), "max": max(attempts)} if attempts else None,
        "refusals": dict(refusals),
        "media_back_sorted_s": [round(x, 3) for x in sorted(media)],
        "errors": [p["error"] for p in [*teachers, *students] if p.get("error")][:5],
    }
