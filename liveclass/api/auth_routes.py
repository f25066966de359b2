"""Login, logout, who am I, change password."""

from __future__ import annotations

import asyncio

from aiohttp import web

from liveclass import auth, cluster
from liveclass.accounts import check_new_password, find_user
from liveclass.api.routing import ANY_USER, PUBLIC, RouteTable, current_user, dump
from liveclass.api.schemas import ChangePasswordRequest, LoginRequest, LoginResponse, Ok, UserOut
from liveclass.api.work import unit_of_work
from liveclass.appkeys import AUTH_CSRF, AUTH_TOKEN, SETTINGS
from liveclass.errors import ApiError
from liveclass.passwords import hash_password_async, verify_password_async

routes = RouteTable("auth")

_BAD_LOGIN = ApiError(401, "invalid_credentials", "Wrong personal ID or password.")


@routes.route(
    "POST",
    "/auth/login",
    summary="Log in with personal ID and password",
    access=PUBLIC,
    body=LoginRequest,
    response=LoginResponse,
)
async def login(request: web.Request, body: LoginRequest) -> web.Response:
    settings = request.app[SETTINGS]
    async with unit_of_work(request) as work:
        delay = await auth.ensure_not_throttled(work.db, settings, body.personal_id, work.address)
    await asyncio.sleep(delay)
    async with unit_of_work(request) as work:
        user = await find_user(work.db, body.personal_id)
        work.actor = user  # the account the personal ID names, also for a failed login
        # Verify even for an unknown account: same answer, same time, nothing to learn.
        password_ok = await verify_password_async(user.password_hash if user else None, body.password)
        if not (user and password_ok and user.active):
            await auth.record_failure(work.db, body.personal_id, work.address)
            work.audit("login_failed", target=body.personal_id[:64])
            await work.commit()
            raise _BAD_LOGIN
        token, csrf = await auth.open_login(work.db, settings, user, work.address)
        await auth.clear_failures(work.db, settings, body.personal_id, work.address)
        work.audit("login")
    answer = LoginResponse(
        user=UserOut.model_validate(user),
        csrf_token=csrf,
        must_change_password=user.must_change_password,
        access_token=token if body.issue_token else None,
    )
    response = dump(answer)
    if not body.issue_token:
        auth.set_session_cookie(response, request, token)
    return response


@routes.route(
    "POST",
    "/auth/logout",
    summary="Log out (ends this login)",
    access=ANY_USER,
    allowed_before_password_change=True,
    response=Ok,
)
async def logout(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        await auth.close_login(work.db, request[AUTH_TOKEN])
        work.audit("logout")
    # Logging out also takes the person out of any live room at once (no reconnect grace).
    await cluster.drop_user_everywhere(request, current_user(request).id, "logged_out")
    response = web.json_response({"ok": True})
    auth.clear_session_cookie(response)
    return response


@routes.route(
    "GET",
    "/me",
    summary="The logged-in account",
    access=ANY_USER,
    response=LoginResponse,
    allowed_before_password_change=True,
)
async def me(request: web.Request) -> web.Response:
    user = current_user(request)
    return dump(
        LoginResponse(
            user=UserOut.model_validate(user),
            csrf_token=request[AUTH_CSRF],
            must_change_password=user.must_change_password,
        )
    )


@routes.route(
    "POST",
    "/auth/password",
    summary="Change my password (ends my other logins)",
    access=ANY_USER,
    body=ChangePasswordRequest,
    response=UserOut,
    allowed_before_password_change=True,
)
async def change_password(request: web.Request, body: ChangePasswordRequest) -> web.Response:
    user = current_user(request)
    settings = request.app[SETTINGS]
    async with unit_of_work(request) as work:  # guessing the current password counts like a failed login
        delay = await auth.ensure_not_throttled(work.db, settings, user.personal_id, work.address)
    await asyncio.sleep(delay)
    async with unit_of_work(request) as work:
        if not await verify_password_async(user.password_hash, body.current_password):
            await auth.record_failure(work.db, user.personal_id, work.address)
            await work.commit()
            raise ApiError(400, "wrong_current_password", "The current password is wrong.")
    if body.new_password == body.current_password:
        raise ApiError(400, "weak_password", "Choose a password different from the current one.")
    check_new_password(body.new_password, user.personal_id, user.full_name)
    async with unit_of_work(request) as work:
        user = await work.db.merge(user)
        user.password_hash = await hash_password_async(body.new_password)
        user.must_change_password = False
        await auth.close_all_logins(work.db, user.id, keep_token=request[AUTH_TOKEN])
        work.audit("password_changed")
    # Whoever holds an open room connection of this account (perhaps the reason for the change) loses it.
    await cluster.drop_user_everywhere(request, user.id, "password_changed")
    return dump(UserOut.model_validate(user))
