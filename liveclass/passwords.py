"""Password hashing (argon2id via argon2-cffi), generation and the password policy."""

from __future__ import annotations

import asyncio
import functools
import secrets
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn

_hasher = PasswordHasher()  # argon2id with the library's maintained defaults (~0.1 s a hash here)
# Generated passwords are ~70 random bits and must be changed at first login: brute force is hopeless
# whatever the cost, so they get a light argon2id (a few ms) and a 2,000-student roster imports in seconds.
_generated_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so both answers take the same time.
    Made on first use, not at import: it is a full-cost hash (~0.1 s of CPU) that every `liveclass`
    command and every server start paid, most of them never checking a password."""
    return _hasher.hash(secrets.token_urlsafe(16))


async def prepare_dummy_hash() -> None:
    """Made when a server starts, before its first login: made by the first login of an unknown account,
    that answer alone would take twice as long and tell that the account does not exist."""
    await asyncio.to_thread(_dummy_hash)


MIN_LENGTH = 8
MAX_LENGTH = 128
# No 0/O, 1/l/I: generated passwords are read aloud and typed by children on phones.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def hash_generated_password(password: str) -> str:
    return _generated_hasher.hash(password)


async def hash_password_async(password: str) -> str:
    # ~0.1 s of CPU: off the event loop so live rooms never stall on a login.
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


def verify_password(password_hash: str | None, password: str) -> bool:
    stored = password_hash or _dummy_hash()
    try:
        result = _hasher.verify(stored, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        result = False
    if _generated_hasher.check_needs_rehash(stored) is False:
        # A light hash verifies in ~3 ms; spend the full cost anyway, so the answer time does not
        # reveal which accounts still have their generated password.
        try:
            _hasher.verify(_dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            pass
    return result


def generate_password(length: int = 12) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


# zxcvbn's score (0–4): 3 is "safely unguessable: moderate protection from offline slow-hash scenario".
MIN_STRENGTH = 3


@dataclass(frozen=True)
class PasswordProblem:
    reason: str  # too_short, too_long, contains_personal_id, built_from_name, too_guessable
    message: str


def password_problem(
    password: str, personal_id: str | None = None, full_name: str | None = None
) -> PasswordProblem | None:
    """Why this password is not acceptable, or None. The strength estimate is zxcvbn's (a maintained
    port of Dropbox's estimator: dictionaries, keyboard patterns, repeats, dates), fed the person's own
    ID and name, with and without Vietnamese diacritics."""
    if len(password) < MIN_LENGTH:
        return PasswordProblem("too_short", f"The password must be at least {MIN_LENGTH} characters long.")
    if len(password) > MAX_LENGTH:
        return PasswordProblem("too_long", f"The password must be at most {MAX_LENGTH} characters long.")
    if personal_id and personal_id in password:
        return PasswordProblem("contains_personal_id", "The password must not contain the personal ID number.")
    name_parts = [_folded(part) for part in (full_name or "").split() if part]
    if name_parts and _built_from(_folded(password), name_parts):
        return PasswordProblem("built_from_name", "The password must not be made of your name.")
    inputs = [personal_id or "", *(full_name or "").split(), *name_parts]
    if zxcvbn(password, user_inputs=[i for i in inputs if i])["score"] < MIN_STRENGTH:
        return PasswordProblem(
            "too_guessable",
            "The password is too easy to guess: use a longer phrase, of several words that do not belong together.",
        )
    return None


def _folded(text: str) -> str:
    """Lower case, without diacritics (đ too) and without anything but letters."""
    text = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(ch for ch in text if ch.isalpha() and not unicodedata.combining(ch))


def _built_from(folded_password: str, name_parts: list[str]) -> bool:
    """Is what is left of the password, digits and signs taken out, only parts of the name?"""
    rest = folded_password
    for part in sorted(set(name_parts), key=len, reverse=True):
        rest = rest.replace(part, "")
    return folded_password != "" and rest == ""
