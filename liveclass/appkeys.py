"""Typed keys for what the aiohttp application shares with its handlers."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveclass.config import Settings
from liveclass.models import User

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", async_sessionmaker[AsyncSession])

# Per request, set by the auth middleware.
USER = web.RequestKey("user", User)
AUTH_TOKEN = web.RequestKey("auth_token", str)
AUTH_CSRF = web.RequestKey("auth_csrf", str)
CSRF_FAILED = web.RequestKey("csrf_failed", bool)
