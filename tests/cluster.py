"""Several real `liveclass serve` processes on this machine: one PostgreSQL database, one Redis (a key
prefix of its own per test), one shared storage folder, as a school runs them behind one address."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from bench.ports import free_port
from liveclass.db import create_engine, session_factory
from tests.helpers import (
    Clients,
    School,
    create_postgres_database,
    drop_postgres_database,
    eventually,
    postgres_url,
    seed_school,
)
from tests.test_cli import liveclass, wait_until_healthy
from tests.test_shutdown_flush import RemoteServer

REDIS_URL = os.environ.get("LIVECLASS_TEST_REDIS", "redis://127.0.0.1:6379/0")


class Node(RemoteServer):
    """One node process; people made here talk to it alone (as when a test asks node A on purpose)."""

    def __init__(self, name: str, port: int, process: subprocess.Popen, log: Path):
        super().__init__(f"http://127.0.0.1:{port}")
        self.name, self.port, self.process, self.log = name, port, process, log
        self.node_id = f"127.0.0.1:{port}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Front(Clients):
    """What a reverse proxy in front of the nodes gives people: the API of any live node."""

    def __init__(self, cluster: "Cluster"):
        self.cluster = cluster
        self.people, self.live_clients = [], []

    @property
    def base_url(self) -> str:
        return next(n for n in self.cluster.nodes if n.alive).base_url


class Cluster:
    def __init__(self, tmp_path: Path, **settings: str):
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "var"
        self.prefix = f"lc-test-{uuid.uuid4().hex[:10]}"
        self.settings = {"LIVECLASS_NODE_TTL_SECONDS": "2", "LIVECLASS_RETENTION_INTERVAL_HOURS": "0", **settings}
        self.nodes: list[Node] = []
        self._ports: list[int] = []
        self.front = Front(self)
        self.database = ""
        self.db = None
        self._engine = None

    @property
    def env(self) -> dict[str, str]:
        return {
            "LIVECLASS_DATABASE_URL": postgres_url(self.database),
            "LIVECLASS_REDIS_URL": REDIS_URL,
            "LIVECLASS_REDIS_PREFIX": self.prefix,
            **self.settings,
        }

    async def start(self, nodes: int = 2, cross_origin: bool = False) -> School:
        """The store migrated once (a deploy step), a school seeded, then the nodes. `cross_origin`: a page
        served by one node may open the live socket of another (as pages at one public URL do)."""
        self._ports = [free_port() for _ in range(nodes)]
        if cross_origin:
            self.settings["LIVECLASS_ALLOWED_ORIGINS"] = json.dumps([f"http://127.0.0.1:{p}" for p in self._ports])
        self.database = await create_postgres_database()
        upgraded = await asyncio.to_thread(liveclass, "db", "upgrade", data_dir=self.data_dir, env=self.env)
        assert upgraded.returncode == 0, upgraded.stderr
        self._engine = create_engine(postgres_url(self.database))
        self.db = session_factory(self._engine)
        school = await seed_school(self)
        for _ in range(nodes):
            self.start_node()
        for node in self.nodes:
            await wait_until_healthy(node.base_url, node.process)
        await self.wait_for_nodes(nodes)
        return school

    def start_node(self, port: int | None = None) -> Node:
        """A new node process (`port`: again on a dead node's port, so under its node id)."""
        port = port or (self._ports.pop(0) if self._ports else free_port())
        name = "ABCDEFGH"[len(self.nodes)]
        log = self.tmp_path / f"node-{name}.log"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVECLASS_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "liveclass.cli", "serve", "--port", str(port), "--data-dir", str(self.data_dir)],
            cwd=self.tmp_path,
            env={**clean, **self.env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        node = Node(name, port, process, log)
        self.nodes.append(node)
        return node

    async def wait_for_nodes(self, count: int, timeout: float = 15) -> None:
        """Until `count` nodes are registered live (the nodes hash in Redis)."""
        client = aioredis.Redis.from_url(REDIS_URL)
        try:

            async def registered() -> bool:
                return await client.hlen(f"{self.prefix}:nodes") >= count

            await eventually(registered, timeout, f"{count} nodes to register", step=0.1)
        finally:
            await client.aclose()

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.node_id == node_id)

    def kill(self, node: Node) -> None:
        """The machine is lost: kill -9, nothing is said or flushed."""
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(10)

    def logs(self) -> str:
        return "\n".join(f"--- node {n.name} ({n.node_id}) ---\n{n.log.read_text()[-6000:]}" for n in self.nodes)

    async def close(self) -> None:
        for clients in [self.front, *self.nodes]:
            await clients.close_clients()
        for node in self.nodes:
            if node.alive:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                await asyncio.to_thread(node.process.wait, 30)
            except subprocess.TimeoutExpired:
                node.process.kill()
        if self._engine is not None:
            await self._engine.dispose()
        if self.database:
            await drop_postgres_database(self.database)
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(f"{self.prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()
