"""The `liveclass bench` subcommand: arguments here, the work in runner.py (imported when it runs)."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_STUDENTS = [5, 15, 45]
DEFAULT_CHAT = "default"  # --chat without a number: 45 students (--quick: 3)


def _counts(text: str) -> list[int]:
    if text.lower() in ("off", "none", "0"):
        return []  # no per-size scenario (e.g. the scale-out scenario alone)
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("a comma-separated list of numbers, e.g. 5,15,45") from None
    if not counts or any(c < 1 or c > 200 for c in counts):
        raise argparse.ArgumentTypeError("each count must be 1 to 200")
    return counts


def _full_class(text: str) -> tuple[int, int] | bool:
    if text.lower() in ("off", "no", "none", "0"):
        return False
    try:
        students, cameras = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("STUDENTS:CAMERAS, e.g. 45:5, or off") from None
    if not 1 <= students <= 200 or not 0 <= cameras <= min(students, 12):
        raise argparse.ArgumentTypeError("1-200 students, 0-12 cameras (and no more than students)")
    return students, cameras


def _chat(text: str) -> int | str:
    if text == DEFAULT_CHAT:
        return text
    try:
        students = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of students, e.g. 45") from None
    if not 1 <= students <= 200:
        raise argparse.ArgumentTypeError("1 to 200 students")
    return students


def _nodes(text: str) -> tuple[int, int]:
    try:
        nodes, classes = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("NODES:CLASSES, e.g. 2:4") from None
    if not 2 <= nodes <= 8 or not 1 <= classes <= 16:
        raise argparse.ArgumentTypeError("2-8 nodes (one is killed), 1-16 classes")
    return nodes, classes


def _weak_class(text: str) -> tuple[int, int]:
    try:
        students, weak = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError("STUDENTS:WEAK, e.g. 45:10") from None
    if not 1 <= students <= 200 or not 1 <= weak <= min(students, 50):
        raise argparse.ArgumentTypeError("1-200 students, 1-50 of them on weak links (and no more than students)")
    return students, weak


def add_parser(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmark the media plane (a real server, synthetic teacher and students)",
        description="Starts `liveclass serve` on a free loopback port with a temporary SQLite store, a synthetic "
        "teacher (640x360 30 fps VP8 ~1 Mbit/s + Opus, optional 1280x720 15 fps screen) and synthetic "
        "students in worker processes, all through the real HTTP and Socket.IO protocol, and measures "
        "the server process. Measures what recording a full class costs, and runs the naive "
        "MediaRelay relay as the baseline. With --nodes, several node processes (Redis + "
        "PostgreSQL) host several classes, and one of them is killed. With --chat, the time to a "
        "chat message's acknowledgement on SQLite and PostgreSQL. With --weak-link, a class in "
        "which some students are on impaired links. See docs/benchmarks.md.",
    )
    bench.add_argument(
        "--students", type=_counts, help="class sizes to measure, e.g. 5,15,45 (default; --quick: 3), or off"
    )
    bench.add_argument(
        "--full-class",
        type=_full_class,
        help="STUDENTS:CAMERAS of the full-class scenario "
        "(teacher camera + microphone + screen; default 45:5; --quick: 4:1), or off",
    )
    bench.add_argument(
        "--recording",
        type=_full_class,
        metavar="STUDENTS:CAMERAS",
        help="the recording cost: a full class of STUDENTS:CAMERAS measured unrecorded, recorded "
        "(the teacher sends rec:start) and unrecorded again, on one server (default: as "
        "--full-class, 45:5; --quick: 4:1), or off",
    )
    bench.add_argument(
        "--relay", type=int, help="subscribers of the MediaRelay baseline (default 4; --quick: 2; 0: skip)"
    )
    bench.add_argument("--window", type=float, help="seconds of each measuring window (default 15; --quick: 3)")
    bench.add_argument(
        "--screen", action="store_true", help="the teacher also shares a screen in the per-size scenarios"
    )
    bench.add_argument("--per-process", type=int, default=12, help="students per worker process (default 12)")
    bench.add_argument(
        "--profile",
        type=float,
        default=None,
        metavar="SECONDS",
        help="a profiling run after the measured ones: the server under cProfile during a join "
        "storm and SECONDS of steady forwarding of the full class (default 15; --quick: 0 = off)",
    )
    bench.add_argument(
        "--nodes",
        type=_nodes,
        metavar="NODES:CLASSES",
        help="the scale-out scenario (off unless given): NODES `liveclass serve` node processes "
        "(Redis + a fresh PostgreSQL database) hosting CLASSES classes; CPU per node and per "
        "class against one node hosting one class alone, then one node killed (SIGKILL) "
        "and the time until its students receive media again",
    )
    bench.add_argument(
        "--nodes-students",
        type=int,
        metavar="N",
        help="students per class in the scale-out scenario (default 15; --quick: 2)",
    )
    bench.add_argument(
        "--nodes-ttl",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="LIVECLASS_NODE_TTL_SECONDS of those nodes: a node silent this long is dead and its "
        "rooms move (default 3; the failover time includes it)",
    )
    bench.add_argument(
        "--chat",
        type=_chat,
        nargs="?",
        const=DEFAULT_CHAT,
        metavar="STUDENTS",
        help="the chat acknowledgement scenario (off unless given): a teacher and STUDENTS students "
        "(default 45; --quick: 3) chatting over Socket.IO only, steadily then in bursts, on "
        "SQLite and on PostgreSQL (a fresh database next to --postgres); the time to each "
        "chat:send's acknowledgement, which waits for the records' commit",
    )
    bench.add_argument(
        "--chat-window",
        type=float,
        metavar="SECONDS",
        help="seconds of the chat scenario's steady chat (default 20; --quick: 3)",
    )
    bench.add_argument(
        "--weak-link",
        type=float,
        nargs="?",
        const=1.0,
        metavar="MINUTES",
        help="the weak-link scenario (off unless given): a teacher publishing two layers per video "
        "source, students of whom some are each behind a user-space bad link (300 kbit/s, "
        "5 %% loss, 100 ms each way); a baseline window with every link clean, then one with "
        "those links impaired, each MINUTES long (default 1) after a warm-up: fps, layer, lost "
        "audio, data per minute per group, the layer selection's share of the server's CPU",
    )
    bench.add_argument(
        "--weak-link-class",
        type=_weak_class,
        metavar="STUDENTS:WEAK",
        help="students of the weak-link scenario and how many on weak links (default 45:10; --quick: 4:2)",
    )
    bench.add_argument(
        "--weak-link-decode",
        type=int,
        metavar="N",
        help="clean students that decode video there (default 5; --quick: 1); every weak one "
        "decodes, the other clean ones count RTP only",
    )
    bench.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/test",
        metavar="DSN",
        help="an existing PostgreSQL database to connect to; the scale-out and chat scenarios "
        "create a fresh database next to it and drop it at the end (default %(default)s)",
    )
    bench.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        metavar="URL",
        help="the Redis of the scale-out scenario (a key prefix of its own, deleted at the end; default %(default)s)",
    )
    bench.add_argument(
        "--no-priority",
        action="store_true",
        help="do not run the server and the probe student at nice -5 (they stand for machines of "
        "their own; by default the synthetic clients and other processes yield to them)",
    )
    bench.add_argument(
        "--quick", action="store_true", help="a smoke run of about a minute (small classes, short windows)"
    )
    bench.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="the soak instead of the scenarios (a script, not in CI; see soak.py): one class with "
        "churn for MINUTES minutes, the server sampled, its records checked at the end",
    )
    bench.add_argument("--out", type=Path, help="write the results as JSON to this file")
    bench.add_argument("--plot", type=Path, help="write a PNG plot to this file (needs matplotlib)")
    bench.add_argument("--keep", action="store_true", help="keep the work directory (server and worker logs)")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    if importlib.util.find_spec("psutil") is None:  # it measures the server process
        raise SystemExit("liveclass: the benchmark needs psutil: pip install 'liveclass[bench]'")
    if args.soak:
        from bench.soak import run_soak

        run_soak(args.soak, out=args.out, keep=args.keep, priority=not args.no_priority)
        return
    from bench import report
    from bench.runner import Options, remove_workdir, run_all

    quick = args.quick
    workdir = Path(tempfile.mkdtemp(prefix="liveclass-bench-"))
    opts = Options(
        students=args.students if args.students is not None else ([3] if quick else DEFAULT_STUDENTS),
        window=args.window or (3.0 if quick else 15.0),
        baseline_window=2.0 if quick else 5.0,
        settle=1.5 if quick else 3.0,
        full_class=(args.full_class or None) if args.full_class is not None else ((4, 1) if quick else (45, 5)),
        recording=(args.recording or None)
        if args.recording is not None
        else ((args.full_class or None) if args.full_class is not None else ((4, 1) if quick else (45, 5))),
        relay=args.relay if args.relay is not None else (2 if quick else 4),
        screen=args.screen,
        per_process=max(1, args.per_process),
        priority=not args.no_priority,
        profile=args.profile if args.profile is not None else (0.0 if quick else 15.0),
        nodes=args.nodes,
        nodes_students=max(1, min(200, args.nodes_students or (2 if quick else 15))),
        nodes_ttl=max(1.0, min(300.0, args.nodes_ttl)),
        postgres=args.postgres,
        redis=args.redis,
        chat=(3 if quick else 45) if args.chat == DEFAULT_CHAT else args.chat,
        chat_window=max(1.0, min(600.0, args.chat_window or (3.0 if quick else 20.0))),
        chat_bursts=2 if quick else 3,
        weak_link=max(0.05, min(30.0, args.weak_link)) if args.weak_link else None,
        weak_link_class=args.weak_link_class or ((4, 2) if quick else (45, 10)),
        weak_link_decode=max(0, args.weak_link_decode if args.weak_link_decode is not None else (1 if quick else 5)),
        workdir=workdir,
        progress=lambda text: print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True),
    )
    failed = True
    try:
        results = asyncio.run(run_all(opts))
        results["command"] = "liveclass " + " ".join(sys.argv[1:])
        results["quick"] = quick
        print(report.text_report(results))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
            print(f"results: {args.out}")
        if args.plot:
            skipped = report.plot(results, args.plot)
            print(skipped or f"plot: {args.plot}")
        failed = bool(results["failed"])
        if failed:
            print(f"liveclass: scenario(s) failed: {', '.join(results['failed'])}", file=sys.stderr)
    finally:
        if args.keep or failed:
            print(f"work directory (logs): {workdir}", file=sys.stderr)
        else:
            remove_workdir(workdir)
    if failed:
        raise SystemExit(1)
