"""Accounts: personal-ID validation, creation and passwords."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveclass.config import Settings
from liveclass.errors import ApiError
from liveclass.models import AccountRole, User
from liveclass.passwords import (
    MIN_LENGTH,
    generate_password,
    hash_generated_password,
    hash_password_async,
    password_problem,
)


def personal_id_problem(settings: Settings, personal_id: str) -> str | None:
    if not re.fullmatch(settings.personal_id_pattern, personal_id):
        return f"personal ID {personal_id!r} does not match the required pattern {settings.personal_id_pattern}"
    return None


def check_personal_id(settings: Settings, personal_id: str) -> None:
    problem = personal_id_problem(settings, personal_id)
    if problem:
        raise ApiError(400, "invalid_personal_id", problem[0].upper() + problem[1:] + ".")


def check_new_password(password: str, personal_id: str, full_name: str | None = None) -> None:
    problem = password_problem(password, personal_id, full_name)
    if problem:
        # `details.reason` lets a client say why in its own language.
        raise ApiError(
            400, "weak_password", problem.message, details={"reason": problem.reason, "min_length": MIN_LENGTH}
        )


async def find_user(db: AsyncSession, personal_id: str) -> User | None:
    return (await db.execute(select(User).where(User.personal_id == personal_id))).scalar_one_or_none()


async def create_user(
    db: AsyncSession,
    settings: Settings,
    *,
    personal_id: str,
    full_name: str,
    role: AccountRole,
    password: str | None = None,
    date_of_birth: date | None = None,
) -> tuple[User, str | None]:
    """Create an account. Without a password one is generated, returned once, and must be changed."""
    check_personal_id(settings, personal_id)
    if await find_user(db, personal_id):
        raise ApiError(409, "personal_id_taken", f"An account with personal ID {personal_id} already exists.")
    generated = None
    if password is None:
        generated = generate_password()
        password_hash = hash_generated_password(generated)
    else:
        check_new_password(password, personal_id, full_name)
        password_hash = await hash_password_async(password)
    user = User(
        personal_id=personal_id,
        full_name=full_name.strip(),
        role=role,
        date_of_birth=date_of_birth,
        password_hash=password_hash,
        must_change_password=generated is not None,
        active=True,
    )
    db.add(user)
    await db.flush()
    return user, generated


def reset_password(user: User) -> str:
    """Give `user` a new generated password that must be changed at the next login."""
    password = generate_password()
    user.password_hash = hash_generated_password(password)
    user.must_change_password = True
    return password
