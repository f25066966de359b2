"""Logins: session tokens (cookie for browsers, bearer for API clients), CSRF and login throttling."""

from __future__ import annotations


import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from aiohttp import web
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.appkeys import AUTH_CSRF, AUTH_TOKEN, CSRF_FAILED, DB, SETTINGS, USER
from liveclass.config import Settings
from liveclass.errors import ApiError
from liveclass.models import AuthSession, LoginFailure, User, utcnow

COOKIE_NAME = "liveclass_session"
CSRF_HEADER = "X-CSRF-Token"
_UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_address(request: web.Request) -> str:
    """The caller's address; behind a trusted reverse proxy, the one it saw (X-Forwarded-For)."""
    remote = request.remote or "unknown"
    trusted = request.app[SETTINGS].trusted_proxies
    if remote in trusted:
        # Walk back from the proxy: the first hop that is not one of ours is the client.
        for hop in reversed(request.headers.get("X-Forwarded-For", "").split(",")):
            hop = hop.strip()
            if hop and hop not in trusted:
                return hop[:64]
    return remote[:64]


async def open_login(db: AsyncSession, settings: Settings, user: User, address: str) -> tuple[str, str]:
    """Create a login for `user`; returns (session token, CSRF token). Only the token's hash is stored."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    await db.execute(delete(AuthSession).where(AuthSession.expires_at < utcnow()))  # expired logins hold addresses
    db.add(
        AuthSession(
            token_hash=_hash(token),
            csrf_token=csrf,
            user_id=user.id,
            client_address=address,
            expires_at=utcnow() + timedelta(hours=settings.session_ttl_hours),
        )
    )
    return token, csrf


async def close_login(db: AsyncSession, token: str) -> None:
    await db.execute(delete(AuthSession).where(AuthSession.token_hash == _hash(token)))


async def close_all_logins(db: AsyncSession, user_id: int, keep_token: str | None = None) -> None:
    query = delete(AuthSession).where(AuthSession.user_id == user_id)
    if keep_token:
        query = query.where(AuthSession.token_hash != _hash(keep_token))
    await db.execute(query)


# -- throttling ------------------------------------------------------------------------------------
MAX_DELAY = 3.0  # seconds: the slowest a login gets while an account is under attack


async def ensure_not_throttled(db: AsyncSession, settings: Settings, personal_id: str, address: str) -> float:
    """Slow an attacker down without locking the real person out (OWASP's authentication guidance):

    - one account from one address: `login_max_failures_per_account` failures within the window, then 429
      for that pair only: the person still logs in from her own device while someone hammers her account
      from elsewhere;
    - one address, whatever the accounts: a higher ceiling (`login_max_failures_per_address`), for a
      school's pupils behind one NAT address, then 429;
    - one account from everywhere (many addresses): past the same count, every attempt waits a little
      longer (progressive delay, at most MAX_DELAY seconds), so guessing stays slow but the right password
      still gets in. Returns the seconds to wait before checking the password (wait outside any store
      transaction: an attack must not hold the store's connections).
    """
    window_start = utcnow() - timedelta(seconds=settings.login_failure_window_seconds)
    recent = LoginFailure.at > window_start
    for condition, limit in (
        (
            (LoginFailure.personal_id == personal_id) & (LoginFailure.address == address),
            settings.login_max_failures_per_account,
        ),
        (LoginFailure.address == address, settings.login_max_failures_per_address),
    ):
        count, oldest = (
            await db.execute(select(func.count(), func.min(LoginFailure.at)).where(condition, recent))
        ).one()
        if count >= limit:
            retry_after = max(1, int((_aware(oldest) - window_start).total_seconds()) + 1)
            raise ApiError(
                429,
                "too_many_attempts",
                f"Too many failed logins. Try again in {retry_after} seconds.",
                headers={"Retry-After": str(retry_after)},
            )
    everywhere = (
        await db.execute(select(func.count()).where(LoginFailure.personal_id == personal_id, recent))
    ).scalar_one()
    beyond = everywhere - settings.login_max_failures_per_account
    return min(MAX_DELAY, 0.25 * 2**beyond) if beyond >= 0 else 0.0


def _aware(value: datetime) -> datetime:
    # func.min() bypasses the column type, so SQLite hands back a naive (UTC) value.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


async def record_failure(db: AsyncSession, personal_id: str, address: str) -> None:
    db.add(LoginFailure(personal_id=personal_id[:64], address=address))


async def clear_failures(db: AsyncSession, settings: Settings, personal_id: str, address: str) -> None:
    """A success forgets the failures of this account from this address (not those from elsewhere: they
    may be an attacker's) and every failure past the window."""
    old = utcnow() - timedelta(seconds=settings.login_failure_window_seconds)
    await db.execute(
        delete(LoginFailure).where(
            ((LoginFailure.personal_id == personal_id) & (LoginFailure.address == address)) | (LoginFailure.at < old)
        )
    )


# -- request identification ------------------------------------------------------------------------
def _presented_token(request: web.Request) -> tuple[str | None, bool]:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(COOKIE_NAME)
    return (cookie, True) if cookie else (None, False)


@web.middleware
async def auth_middleware(request: web.Request, handler):
    """Identify the caller; the route wrapper decides what they may do."""
    token, via_cookie = _presented_token(request)
    if token and request.path.startswith("/api/"):
        async with request.app[DB]() as db:
            login = (
                await db.execute(select(AuthSession).where(AuthSession.token_hash == _hash(token)))
            ).scalar_one_or_none()
        if login and login.expires_at > utcnow() and login.user.active:
            request[USER] = login.user
            request[AUTH_TOKEN] = token
            request[AUTH_CSRF] = login.csrf_token
            if via_cookie and request.method in _UNSAFE_METHODS:
                sent = request.headers.get(CSRF_HEADER, "")
                request[CSRF_FAILED] = not hmac.compare_digest(sent.encode(), login.csrf_token.encode())
    return await handler(request)


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        COOKIE_NAME,
        token,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=settings.cookie_secure or request.secure,
        max_age=int(settings.session_ttl_hours * 3600),
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path="/")
