"""Join tokens: the only way the live room learns who someone is.

`liveclass/` signs a token (JWT, HS256, shared secret) when someone may join a session; the live room
verifies it on connect. Tokens live at most 60 s and are single use: the room spends the token's id
through a `SpentTokens` store that the application injects (a database table, so it holds across nodes).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import jwt

AUDIENCE = "liveclass-live"
ISSUER = "liveclass"
ROOM_ROLES = ("teacher", "student", "observer", "guest")


class JoinTokenError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class JoinClaims:
    user_id: int
    session_id: int
    room_role: str
    name: str
    personal_id: str
    on_roster: bool
    token_id: str
    expires_at: float


class SpentTokens(Protocol):
    async def spend(self, token_id: str, expires_at: float) -> bool:
        """Mark the token id as used; False if it had been used already."""


def issue_join_token(
    secret: str,
    *,
    user_id: int,
    session_id: int,
    room_role: str,
    name: str,
    personal_id: str,
    on_roster: bool,
    ttl_seconds: int = 60,
) -> tuple[str, float]:
    if room_role not in ROOM_ROLES:
        raise ValueError(f"unknown room role {room_role!r}")
    now = int(time.time())
    expires_at = now + min(ttl_seconds, 60)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "sid": session_id,
        "role": room_role,
        "name": name,
        "pid": personal_id,
        "roster": on_roster,
        "iat": now,
        "exp": expires_at,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, secret, algorithm="HS256"), expires_at


def decode_join_token(secret: str, token: object) -> JoinClaims:
    """Check signature, audience and expiry; says why a token is refused. Does not spend it."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise JoinTokenError("token_missing", "A join token is required: ask the server to join the session again.")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "jti", "sub", "sid", "role"]},
        )
    except jwt.ExpiredSignatureError:
        raise JoinTokenError("token_expired", "The join token has expired: join the session again.") from None
    except jwt.InvalidTokenError:
        raise JoinTokenError("token_invalid", "The join token is not valid.") from None
    if claims["role"] not in ROOM_ROLES or not isinstance(claims["sid"], int):
        raise JoinTokenError("token_invalid", "The join token is not valid.")
    return JoinClaims(
        user_id=int(claims["sub"]),
        session_id=claims["sid"],
        room_role=claims["role"],
        name=str(claims.get("name", "")),
        personal_id=str(claims.get("pid", "")),
        on_roster=bool(claims.get("roster", False)),
        token_id=str(claims["jti"]),
        expires_at=float(claims["exp"]),
    )


async def accept_join_token(secret: str, token: object, spent: SpentTokens, session_id: object = None) -> JoinClaims:
    """Verify a token presented on connect and spend it, so it can never be used again."""
    claims = decode_join_token(secret, token)
    if session_id is not None and session_id != claims.session_id:
        raise JoinTokenError("token_wrong_session", "This join token is for another session.")
    if not await spent.spend(claims.token_id, claims.expires_at):
        raise JoinTokenError("token_reused", "This join token was already used: join the session again.")
    return claims
