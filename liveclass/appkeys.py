"""Typed keys for what the aiohttp application shares with its handlers."""
from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.config import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", async_sessionmaker[AsyncSession])
