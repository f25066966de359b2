"""The `liveclass` command: serve, migrate the store, manage accounts, import the roster, export records."""

from __future__ import annotations

import argparse
import asyncio
import csv
import logging
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from tqdm import tqdm

from liveclass import accounts, roster, workers
from liveclass.audit import audit
from bench.command import add_parser as add_bench_parser  # stdlib only; the bench itself loads when it runs
from liveclass.config import ConfigError, Settings, load_settings, prepare_data_dir
from liveclass.db import create_engine, session_factory, upgrade_database
from liveclass.errors import ApiError
from liveclass.models import AccountRole


class CliError(Exception):
    """Stops the command with a message and exit status 1 (2 for usage)."""


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "data_dir": getattr(args, "data_dir", None),
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
    }
    return prepare_data_dir(load_settings(**overrides))


def _upgrade(settings: Settings) -> None:
    """Migrate the store. One that cannot be reached or opened is a misconfiguration: a message, no traceback."""
    try:
        upgrade_database(settings.effective_database_url)
    except (OSError, DBAPIError) as exc:
        url = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        raise CliError(f"Cannot use the database {url}: {getattr(exc, 'orig', None) or exc}") from None


async def _with_store(settings: Settings, work):
    """Run `work(db)` in one transaction on a migrated store."""
    await asyncio.to_thread(_upgrade, settings)
    engine = create_engine(settings.effective_database_url)
    try:
        async with session_factory(engine)() as db:
            result = await work(db)
            await db.commit()
            return result
    finally:
        await engine.dispose()


# -- commands ------------------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from liveclass.access_log import AccessLog
    from liveclass.app import create_app
    from liveclass.logs import configure as configure_logs

    settings = _settings(args)
    workers.check(settings, args.workers)
    configure_logs(settings.log_level, settings.log_format)
    _upgrade(settings)
    if args.workers > 1:
        workers.run(settings, args.workers, args.data_dir)
        return
    app = create_app(settings)
    print(f"LiveClass: http://{settings.host}:{settings.port}/  (data: {settings.data_dir.resolve()})", flush=True)
    try:
        web.run_app(
            app, host=settings.host, port=settings.port, print=None, shutdown_timeout=10, access_log_class=AccessLog
        )
    except OSError as exc:
        # Mostly a port already taken or an address that is not this machine's: say so, no traceback.
        raise CliError(f"Cannot serve on {settings.host}:{settings.port}: {exc.strerror or exc}") from None


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _upgrade(settings)
    print("The database schema is up to date.")


def _read_password_stdin() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("No password on standard input.")
    return password


def cmd_users_add(args: argparse.Namespace) -> None:
    settings = _settings(args)
    name = " ".join(args.name.split())  # the same rule as the roster import and the API: no empty names
    if not name or len(name) > roster.MAX_NAME:
        raise CliError(f"The name must be 1 to {roster.MAX_NAME} characters long.")
    password = _read_password_stdin() if args.password_stdin else None

    async def work(db):
        user, generated = await accounts.create_user(
            db, settings, personal_id=args.personal_id, full_name=name, role=AccountRole(args.role), password=password
        )
        audit(db, None, "user_created", target=f"user:{user.id}", via="cli", role=user.role.value)
        return user, generated

    user, generated = asyncio.run(_with_store(settings, work))
    print(f"Created {user.role.value} {user.full_name} ({user.personal_id}).")
    if generated:
        print(f"Password (shown once; it must be changed at first login): {generated}")


def cmd_users_reset_password(args: argparse.Namespace) -> None:
    settings = _settings(args)

    async def work(db):
        user = await accounts.find_user(db, args.personal_id)
        if user is None:
            raise CliError(f"No account with personal ID {args.personal_id}.")
        from liveclass.auth import close_all_logins

        password = accounts.reset_password(user)
        await close_all_logins(db, user.id)
        audit(db, None, "password_reset", target=f"user:{user.id}", via="cli")
        return user, password

    user, password = asyncio.run(_with_store(settings, work))
    print(
        f"New password for {user.full_name} ({user.personal_id}), shown once; it must be changed at first "
        f"login: {password}"
    )


def _open_private_file(path: Path, what: str, **mode):
    """A new file only its owner can read (generated passwords, exports: personal data); never
    overwrites one. `mode`: os.fdopen's arguments (text by default)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliError(f"{path} already exists; name a new file for {what}.") from None
    except OSError as exc:
        raise CliError(f"Cannot create {path}: {exc.strerror}.") from None
    return os.fdopen(fd, **(mode or {"mode": "w", "encoding": "utf-8-sig", "newline": ""}))


def cmd_roster_import(args: argparse.Namespace) -> None:
    settings = _settings(args)
    try:
        raw = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read {args.file}: {exc.strerror}.") from None
    try:
        rows, problems = roster.parse_roster(roster.decode_roster(raw), settings)
    except roster.RosterFileError as exc:
        raise CliError(f"{args.file}: {exc}. Nothing was imported.") from None
    school_year = args.school_year or roster.current_school_year()
    written: list[Path] = []

    async def work(db):
        nonlocal rows
        link_problems = await roster.check_links(db, rows)
        all_problems = sorted(problems + link_problems, key=lambda p: p.line)
        for problem in all_problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        if all_problems and not args.skip_bad_rows:
            raise CliError(
                f"{len(all_problems)} bad row(s); nothing was imported. Fix them, or import the "
                "good rows only with --skip-bad-rows."
            )
        bad_lines = {p.line for p in all_problems}
        rows = [r for r in rows if r.line not in bad_lines]
        new_ids = {r.personal_id for r in rows} - {u for u in await _existing_ids(db, rows)}
        if new_ids and not args.passwords_out:
            raise CliError(
                f"{len(new_ids)} new account(s) need passwords: name a file for them with "
                "--passwords-out FILE (they are never printed). Nothing was imported."
            )
        with tqdm(
            total=len(rows),
            desc="Importing",
            unit="row",
            file=sys.stderr,
            disable=len(rows) < 200 or not sys.stderr.isatty(),
        ) as bar:
            result = await roster.import_roster(db, settings, rows, school_year=school_year, progress=bar.update)
        result.skipped = all_problems
        if result.passwords:
            with _open_private_file(Path(args.passwords_out), "the passwords") as handle:
                written.append(Path(args.passwords_out))
                writer = csv.writer(handle)
                writer.writerow(["personal_id", "full_name", "password"])
                writer.writerows(result.passwords)
        audit(
            db,
            None,
            "roster_imported",
            via="cli",
            created=result.created,
            updated=result.updated,
            skipped=len(all_problems),
            school_year=school_year,
        )
        return result

    try:
        result = asyncio.run(_with_store(settings, work))
    except BaseException:
        # Nothing was stored: passwords of accounts that do not exist must not be handed out.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    print(
        f"Roster imported for {school_year}: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {len(result.skipped)} bad row(s) skipped."
    )
    if result.passwords:
        print(
            f"Passwords of the {len(result.passwords)} new account(s) are in {args.passwords_out} "
            "(readable only by you): hand them out, then delete the file."
        )


def cmd_recordings_render(args: argparse.Namespace) -> None:
    from recordings import RenderError, render

    from liveclass.lesson_videos import OUTPUT_NAME, latest_recording

    settings = _settings(args)
    recording = latest_recording(settings.recordings_dir, args.session_id)
    if recording is None:
        raise CliError(f"Session {args.session_id} has no finished recording in {settings.recordings_dir}.")
    with tqdm(total=100, desc="Lesson video", unit="%", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:

        def progress(fraction: float) -> None:
            bar.update(round(fraction * 100) - bar.n)

        try:
            output = asyncio.run(render(recording, recording / OUTPUT_NAME, on_progress=progress))
        except RenderError as exc:
            raise CliError(f"The lesson video could not be made: {str(exc)[-500:]}") from None
    print(f"Lesson video: {output}")


def cmd_records_purge(args: argparse.Namespace) -> None:
    from liveclass.archive.retention import purge_expired
    from liveclass.live import create_router

    settings = _settings(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    async def work():
        await asyncio.to_thread(_upgrade, settings)
        engine = create_engine(settings.effective_database_url)
        router = create_router(settings)  # only for its lock: one retention run at a time in the cluster
        try:
            async with router.exclusive("retention", seconds=3600) as mine:
                if not mine:
                    raise CliError(
                        "A retention run is already going on (on a server of this school); "
                        "try again when it has finished."
                    )
                return await purge_expired(session_factory(engine), settings, dry_run=args.dry_run, via="cli")
        finally:
            await router.close()
            await engine.dispose()

    report = asyncio.run(work())
    print("Dry run: nothing was deleted. Due for deletion:" if report.dry_run else "Deleted:")
    what = {
        "recordings": "recording(s)",
        "chat": "chat message(s)",
        "attendance": "presence interval(s)",
        "handouts": "handout(s)",
        "assessments": "poll/quiz event(s)",
        "audit": "audit log entries",
    }
    extra = {
        "recordings": f", {report.files_deleted['recordings']} file(s)",
        "chat": f", text of {report.events['chat_text_removed']} chat event(s)",
        "attendance": f", {report.events['attendance_deleted']} participation event(s)",
        "handouts": f", {report.files_deleted['handouts']} file(s)",
    }
    for kind, count in report.deleted.items():
        sessions = f" in {report.sessions[kind]} session(s)" if kind in report.sessions else ""
        print(f"  {kind:<11} {count} {what[kind]}{extra.get(kind, '')}{sessions} (period {report.days[kind]} days)")
    print(f"Sessions kept under a legal hold: {report.held_sessions}")
    if report.failed_sessions:
        raise CliError(
            f"{len(report.failed_sessions)} session(s) could not be purged (see the log above): "
            + ", ".join(map(str, report.failed_sessions))
        )


async def _records_export(settings: Settings, session_id: int, out: str | None):
    from contextlib import aclosing

    from liveclass.archive.export import prepare_export, stream_export
    from liveclass.models import LiveSession, Period

    await asyncio.to_thread(_upgrade, settings)
    engine = create_engine(settings.effective_database_url)
    try:
        db_factory = session_factory(engine)
        async with db_factory() as db:
            session = await db.get(LiveSession, session_id)
            period = await db.get(Period, session.period_id) if session else None
            if session is None or period is None:
                raise CliError(f"No session {session_id}.")
            export = await prepare_export(db, session, period, settings.recordings_dir, settings.handouts_dir)
            path = Path(out) if out else Path(export.filename)
            if path.is_dir():
                path = path / export.filename
            # Before the audit entry: a bad --out exports nothing.
            handle = _open_private_file(path, "the export (--out)", mode="wb")
            try:
                audit(db, None, "session_exported", target=f"session:{session_id}", via="cli")
                await db.commit()
            except BaseException:
                handle.close()
                path.unlink(missing_ok=True)
                raise
        written = 0
        try:
            with (
                handle,
                tqdm(
                    total=export.estimated_size,
                    desc="Export",
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    file=sys.stderr,
                    disable=not sys.stderr.isatty(),
                ) as bar,
            ):
                async with aclosing(stream_export(export, db_factory)) as chunks:
                    async for chunk in chunks:
                        handle.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
                bar.total = bar.n  # the estimate guessed the events' size
                bar.refresh()
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise CliError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        except BaseException:
            path.unlink(missing_ok=True)  # no half-written ZIP left behind
            raise
        return path, written, export
    finally:
        await engine.dispose()


def cmd_records_export(args: argparse.Namespace) -> None:
    settings = _settings(args)
    path, written, export = asyncio.run(_records_export(settings, args.session_id, args.out))
    media = sum(1 for f in export.files if f.arcname.endswith(".webm"))
    handouts = sum(1 for f in export.files if f.arcname.startswith("handouts/"))
    print(
        f"Session {args.session_id} exported to {path} ({written} bytes: {media} recorded file(s), "
        f"{handouts} handout(s), {export.counts['attendance']} attendance line(s), {export.counts['chat']} chat "
        f"message(s), {export.counts['events']} event(s))."
    )


async def _existing_ids(db, rows) -> list[str]:
    from sqlalchemy import select

    from liveclass.models import User

    ids = [r.personal_id for r in rows]
    return list((await db.execute(select(User.personal_id).where(User.personal_id.in_(ids)))).scalars())


# -- argument parsing ----------------------------------------------------------------------------------
def _positive(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError("a whole number from 1 to 64")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="liveclass", description="LiveClass live-classroom server")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data directory (default ./var or LIVECLASS_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080); workers use PORT, PORT+1, …")
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="node processes on this machine, one per core (more than 1 needs Redis and PostgreSQL)",
    )
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="the database").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", parents=[common], help="migrate the schema to the newest version").set_defaults(
        func=cmd_db_upgrade
    )

    users = sub.add_parser("users", help="accounts").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", parents=[common], help="create an account")
    add.add_argument("--role", required=True, choices=[r.value for r in AccountRole])
    add.add_argument("--personal-id", required=True)
    add.add_argument("--name", required=True)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input instead of generating one"
    )
    add.set_defaults(func=cmd_users_add)
    reset = users.add_parser("reset-password", parents=[common], help="give an account a new generated password")
    reset.add_argument("personal_id")
    reset.set_defaults(func=cmd_users_reset_password)

    roster_cmd = sub.add_parser("roster", help="the school roster").add_subparsers(dest="roster_command", required=True)
    imp = roster_cmd.add_parser(
        "import",
        parents=[common],
        help="import or update accounts and classes from CSV",
        description=roster.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("file")
    imp.add_argument("--passwords-out", help="new file for the generated passwords of new accounts (mode 0600)")
    imp.add_argument("--skip-bad-rows", action="store_true", help="import the good rows even if some are bad")
    imp.add_argument("--school-year", help="e.g. 2026-2027 (default: the current school year)")
    imp.set_defaults(func=cmd_roster_import)
    recordings_cmd = sub.add_parser("recordings", help="recorded periods").add_subparsers(
        dest="recordings_command", required=True
    )
    render_cmd = recordings_cmd.add_parser(
        "render",
        parents=[common],
        help="make one shareable lesson video from a session's recording (low priority, progress shown)",
    )
    render_cmd.add_argument("session_id", type=int)
    render_cmd.set_defaults(func=cmd_recordings_render)
    records_cmd = sub.add_parser("records", help="the records archive")
    records_sub = records_cmd.add_subparsers(dest="records_command", required=True)
    purge_cmd = records_sub.add_parser(
        "purge",
        parents=[common],
        help="delete the records whose retention period has run out (the daily job does this too)",
    )
    purge_cmd.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    purge_cmd.set_defaults(func=cmd_records_purge)
    export_cmd = records_sub.add_parser(
        "export",
        parents=[common],
        help="write a whole session (recordings, attendance, chat, events) to one ZIP file (progress shown)",
    )
    export_cmd.add_argument("session_id", type=int)
    export_cmd.add_argument(
        "--out",
        help="the ZIP file to write (default: liveclass-CLASS-SUBJECT-DATE-session-ID.zip in the current directory)",
    )
    export_cmd.set_defaults(func=cmd_records_export)
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CliError, ConfigError) as exc:
        print(f"liveclass: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        print(f"liveclass: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
