"""The scale-out scenario's cluster, all on 127.0.0.1: a fresh PostgreSQL database, a Redis key prefix
of its own, and N `liveclass serve` node processes sharing one data directory (its secret key signs
the join tokens every node checks). Everything it made is removed by close(), also after a failure.
FreshDatabase (the database alone) serves the chat scenario too."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.runner import ServerProcess, _clean_env, start_liveclass


class FreshDatabase:
    """A PostgreSQL database of the bench's own, created next to an existing one (`admin_dsn`, a DSN
    to connect to) and migrated as a deploy step would (`liveclass db upgrade`); drop() removes it."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.name = f"lc_bench_{uuid.uuid4().hex[:12]}"
        self.created = False

    @property
    def dsn(self) -> str:
        """asyncpg's DSN of the database."""
        return f"{self.admin_dsn.rsplit('/', 1)[0]}/{self.name}"

    @property
    def url(self) -> str:
        """LIVECLASS_DATABASE_URL of the database."""
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def create(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        """CREATE DATABASE, then `liveclass db upgrade --data-dir data_dir` with `env`'s settings added."""
        import asyncpg

        connection = await asyncpg.connect(self.admin_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{self.name}"')
            self.created = True
        finally:
            await connection.close()
        upgrade = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "liveclass.cli", "db", "upgrade", "--data-dir", str(data_dir)],
            env={**_clean_env(), **(env or {}), "LIVECLASS_DATABASE_URL": self.url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if upgrade.returncode != 0:
            raise RuntimeError(f"liveclass db upgrade failed: {upgrade.stderr[-2000:]}")

    async def drop(self) -> None:
        """DROP DATABASE ... WITH (FORCE), if it was created (connections still open are closed)."""
        if not self.created:
            return
        import asyncpg

        connection = await asyncpg.connect(self.admin_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False
        finally:
            await connection.close()


@dataclass
class Node:
    name: str  # A, B, ... in start order
    server: ServerProcess
    url: str  # http://127.0.0.1:port, also its node id's host:port

    @property
    def node_id(self) -> str:  # LIVECLASS_NODE_ID's default: host:port
        return self.url.removeprefix("http://")

    @property
    def alive(self) -> bool:
        return self.server.popen.poll() is None


class Cluster:
    def __init__(self, workdir: Path, *, postgres: str, redis: str, ttl: float) -> None:
        """postgres: a DSN of an existing database to connect to (the fresh one is made next to it)."""
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.redis_url, self.ttl = redis, ttl
        self.db = FreshDatabase(postgres)
        self.prefix = f"lc-bench-{uuid.uuid4().hex[:10]}"
        self.nodes: list[Node] = []

    @property
    def database(self) -> str:
        return self.db.name

    @property
    def database_url(self) -> str:
        return self.db.url

    @property
    def env(self) -> dict[str, str]:
        """What makes a `liveclass serve` a node of this cluster."""
        return {
            "LIVECLASS_DATABASE_URL": self.database_url,
            "LIVECLASS_REDIS_URL": self.redis_url,
            "LIVECLASS_REDIS_PREFIX": self.prefix,
            "LIVECLASS_NODE_TTL_SECONDS": f"{self.ttl:g}",
            "LIVECLASS_RETENTION_INTERVAL_HOURS": "0",  # no retention sweep during the run
            "LIVECLASS_DRAIN_TIMEOUT_SECONDS": "5",
        }  # a node stopped at the end hands nothing over for long

    async def create(self) -> None:
        """The database, migrated once as a deploy step would (`liveclass db upgrade`)."""
        await self.db.create(self.data_dir, self.env)

    async def start_nodes(self, count: int) -> list[Node]:
        """`count` node processes, started together; each answers /healthz before this returns."""
        # INFO: the logs show the placements and the take-over after the kill (a few lines per join).
        env = {**self.env, "LIVECLASS_LOG_LEVEL": "INFO"}
        names = "ABCDEFGHIJKLMNOP"[len(self.nodes) : len(self.nodes) + count]
        started = await asyncio.gather(
            *(start_liveclass(self.data_dir, self.workdir / f"node-{name}.log", env=env) for name in names),
            return_exceptions=True,
        )
        for name, outcome in zip(names, started):
            if not isinstance(outcome, BaseException):
                self.nodes.append(Node(name, *outcome))
        failed = [o for o in started if isinstance(o, BaseException)]
        if failed:
            raise failed[0]
        await self._wait_registered(len(self.nodes))
        return self.nodes

    async def _wait_registered(self, count: int, timeout: float = 20) -> None:
        """Until `count` nodes have a heartbeat in Redis (placement only considers those)."""
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis_url)
        try:
            for _ in range(int(timeout / 0.1)):
                if await client.hlen(f"{self.prefix}:nodes") >= count:
                    return
                await asyncio.sleep(0.1)
        finally:
            await client.aclose()
        raise RuntimeError(f"fewer than {count} nodes registered in Redis within {timeout:g} s")

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def kill(self, node: Node) -> None:
        """The machine is lost: SIGKILL, nothing said or flushed."""
        node.server.popen.send_signal(signal.SIGKILL)
        node.server.popen.wait(10)

    async def close(self) -> list[str]:
        """Stop every node (together: each one's shutdown is bounded by ServerProcess.stop), then drop
        the database and delete the Redis keys. Each step is tried whatever happened before; returns
        what failed (so that a cleanup problem does not hide the run's own error)."""
        problems = []
        for outcome in await asyncio.gather(*(n.server.stop() for n in self.nodes), return_exceptions=True):
            if isinstance(outcome, BaseException):
                problems.append(f"stopping a node: {type(outcome).__name__}: {outcome}")
        for step in (self.db.drop, self._delete_keys):
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - reported, the next step still runs
                problems.append(f"{step.__name__}: {type(exc).__name__}: {exc}")
        return problems

    async def _delete_keys(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis_url)
        try:
            keys = [key async for key in client.scan_iter(f"{self.prefix}:*", count=500)]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i : i + 500])
        finally:
            await client.aclose()
