"""The scale-out scenario's cluster, all on 127.0.0.1: a fresh PostgreSQL database, a Redis key prefix
of its own, and N `liveclass serve` node processes sharing one data directory (its secret key signs
the join tokens every node checks). Everything it made is removed by close(), also after a failure."""
from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from liveclass.bench.runner import ServerProcess, _clean_env, start_liveclass


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
        self.postgres, self.redis_url, self.ttl = postgres, redis, ttl
        self.database = f"lc_bench_{uuid.uuid4().hex[:12]}"
        self.prefix = f"lc-bench-{uuid.uuid4().hex[:10]}"
        self.nodes: list[Node] = []
        self._created = False

    @property
    def database_url(self) -> str:
        base = self.postgres.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        return f"{base}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        """What makes a `liveclass serve` a node of this cluster."""
        return {"LIVECLASS_DATABASE_URL": self.database_url, "LIVECLASS_REDIS_URL": self.redis_url,
                "LIVECLASS_REDIS_PREFIX": self.prefix, "LIVECLASS_NODE_TTL_SECONDS": f"{self.ttl:g}",
                "LIVECLASS_RETENTION_INTERVAL_HOURS": "0",  # no retention sweep during the run
                "LIVECLASS_DRAIN_TIMEOUT_SECONDS": "5"}  # a node stopped at the end hands nothing over for long

    async def create(self) -> None:
        """The database, migrated once as a deploy step would (`liveclass db upgrade`)."""
        import asyncpg

        connection = await asyncpg.connect(self.postgres)
        try:
            await connection.execute(f'CREATE DATABASE "{self.database}"')
            self._created = True
        finally:
            await connection.close()
        upgrade = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "liveclass.cli", "db", "upgrade", "--data-dir", str(self.data_dir)],
            env={**_clean_env(), **self.env}, capture_output=True, text=True, timeout=120)
        if upgrade.returncode != 0:
            raise RuntimeError(f"liveclass db upgrade failed: {upgrade.stderr[-2000:]}")

    async def start_nodes(self, count: int) -> list[Node]:
        """`count` node processes, started together; each answers /healthz before this returns."""
        # INFO: the logs show the placements and the take-over after the kill (a few lines per join).
        env = {**self.env, "LIVECLASS_LOG_LEVEL": "INFO"}
        names = "ABCDEFGHIJKLMNOP"[len(self.nodes):len(self.nodes) + count]
        started = await asyncio.gather(*(start_liveclass(self.data_dir, self.workdir / f"node-{name}.log", env=env)
                                         for name in names), return_exceptions=True)
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
        for step in ([self._drop_database] if self._created else []) + [self._delete_keys]:
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - reported, the next step still runs
                problems.append(f"{step.__name__}: {type(exc).__name__}: {exc}")
        return problems

    async def _drop_database(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(self.postgres)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            await connection.close()

    async def _delete_keys(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis_url)
        try:
            keys = [key async for key in client.scan_iter(f"{self.prefix}:*", count=500)]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i:i + 500])
        finally:
            await client.aclose()
