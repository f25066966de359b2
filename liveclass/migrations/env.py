"""Alembic environment: runs migrations on the configured database.

SQLite migrates through Python's own sqlite3 driver, synchronously: aiosqlite's worker thread can outlive
the event loop when the file cannot be opened and then prints a traceback on exit. Other databases
migrate over their async engine, one process at a time.
"""

import asyncio

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from liveclass.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run_sqlite(url) -> None:
    engine = create_engine(url.set(drivername="sqlite"))
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


# Several nodes starting at once against one PostgreSQL: one migrates, the others wait for it and then
# find the schema current (a session-level advisory lock; any 64-bit number of our own).
MIGRATION_LOCK = 0x4C697665436C61  # "LiveCla"


async def _run_async(url) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            await connection.commit()
            try:
                await connection.run_sync(_run)
            finally:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None  # liveclass.db.alembic_config always sets it
    database_url = make_url(url)
    if database_url.get_backend_name() == "sqlite":
        _run_sqlite(database_url)
    else:
        asyncio.run(_run_async(database_url))
