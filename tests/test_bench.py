"""`liveclass bench --quick` end to end, tiny: a real server process, a synthetic teacher and two
students through the real protocol, the full-class, recording-cost and MediaRelay scenarios scaled
down; `--nodes 2:2`, two node processes with a node killed; and `--chat 2`, chat acknowledgements on
SQLite and PostgreSQL. Checks the shape of the JSON, that media flowed, that the recorded class left
its files, that the killed node's class came back and that no acknowledged chat message was lost; no
timing assertions (timings belong in the bench itself). Also `--profile` (the server under cProfile), and
the soak (`python -m bench.soak`) for 0.3 minutes."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
import redis

from tests.cluster import REDIS_URL
from tests.helpers import POSTGRES_ADMIN_DSN


# The scenarios `--quick` runs unless told not to: a test of one other scenario turns them off.
ONLY = ["--students", "off", "--full-class", "off", "--recording", "off", "--relay", "0"]


def run_module(module: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` as a process of its own, which must exit 0; the end of its output says why not."""
    run = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run


def quick_bench(out: Path, *options: str, timeout: float) -> tuple[dict, str]:
    """`liveclass bench --quick OPTIONS --out OUT`: the results it wrote there, and what it printed."""
    run = run_module("liveclass.cli", "bench", "--quick", *options, "--out", str(out), timeout=timeout)
    return json.loads(out.read_text()), run.stdout


def test_quick_bench_writes_results_and_students_receive_frames(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    results, printed = quick_bench(
        out,
        "--students",
        "2",
        "--window",
        "2",
        "--full-class",
        "2:1",
        "--recording",
        "2:1",
        "--relay",
        "1",
        "--plot",
        str(png),
        timeout=300,
    )

    assert {
        "machine",
        "options",
        "scenarios",
        "full_class",
        "recording_cost",
        "relay_baseline",
        "targets",
        "baseline",
        "floor",
    } <= set(results)
    assert results["failed"] == [] and results["machine"]["nproc"] >= 1
    for scenario in [*results["scenarios"], results["full_class"], results["recording_cost"]]:
        late_joiner = set() if scenario is results["recording_cost"] else {"late_joiner_first_frame_s"}
        assert {
            "server",
            "students_view",
            "latency_ms",
            "join_storm",
            "publisher",
            "teacher_only",
            *late_joiner,
        } <= set(scenario), scenario.keys()
        assert {
            "cpu_pct",
            "cpu_per_student_pct",
            "us_per_forwarded_packet",
            "cpu_per_video_stream_pct",
            "rss_per_participant_mb",
        } <= set(scenario["server"])
        view = scenario["students_view"]
        assert view["frames_received"] > 0 and view["fps"]["min"] > 0  # every student received frames
        assert view["decoders_created"] == 0  # counted, never decoded
        assert scenario["join_storm"]["without_first_frame"] == 0
        assert scenario["latency_ms"]["frames_matched"] > 0
    assert results["full_class"]["teacher_receives_fps"]  # the teacher receives the student camera
    # The same class recorded (rec:start over Socket.IO) between two unrecorded windows: every window
    # measured, the teacher's camera, microphone and screen on disk under the server's data directory.
    recording = results["recording_cost"]["recording"]
    assert set(recording["windows"]) == {"unrecorded_before", "recorded", "unrecorded_after"}
    for window in recording["windows"].values():
        assert window["server_cpu_pct"] > 0 and window["fps_min"] > 0
    assert recording["server_cpu_ratio"] > 0 and recording["server_cpu_difference_pct"] is not None
    assert recording["files_ok"] and recording["finished"] and recording["stopped_state"] == "off"
    assert recording["sources"] == ["camera", "microphone", "screen"]
    assert all(f["bytes_on_disk"] > 0 for f in recording["files"])
    assert recording["bytes"] > 0 and recording["window_media_bytes_per_s"] > 0 and recording["mb_per_minute"] > 0
    assert recording["directory"].startswith("data/recordings/")
    assert "recording cost (2 students" in printed and "all non-empty" in printed
    assert results["relay_baseline"]["students_view"]["frames_received"] > 0
    assert results["baseline"]["ratio"] is not None
    assert {t["key"] for t in results["targets"]} == {
        "cpu_per_video_stream",
        "full_class_latency_p95",
        "full_class_cpu",
        "full_class_fps",
        "storm_first_frame",
        "rss_per_participant",
    }
    if importlib.util.find_spec("matplotlib"):
        assert png.read_bytes().startswith(b"\x89PNG")
    else:
        assert "no plot" in printed


def test_quick_scale_out_spreads_classes_and_brings_a_killed_node_s_students_back(tmp_path):
    """`--nodes 2:2` alone: two node processes (Redis, a fresh PostgreSQL database), two classes of two
    students, one class per node, then one node killed (SIGKILL) and its class back on the other."""
    out = tmp_path / "nodes.json"
    results, printed = quick_bench(
        out,
        *ONLY,
        "--window",
        "2",
        "--nodes",
        "2:2",
        "--postgres",
        POSTGRES_ADMIN_DSN,
        "--redis",
        REDIS_URL,
        timeout=180,
    )
    assert results["failed"] == [] and results["scenarios"] == []
    scale_out = results["scale_out"]
    assert scale_out["nodes"] == 2 and scale_out["classes"] == 2 and scale_out["students_per_class"] == 2
    placement = scale_out["placement"]
    assert sorted(placement["classes_per_node"].values()) == [1, 1]
    assert placement["even"] and placement["start_answers_agree"]
    assert sum(scale_out["placement_started_together"]["classes_per_node"].values()) == 2  # (not judged here)
    # every student received the teacher's camera in each window: one class alone, both, after the kill
    for name, nodes in (("one_process_alone", 2), ("all_classes", 2), ("after_failover", 1)):
        window = scale_out[name]
        assert len(window["nodes"]) == nodes and window["fps"]["n"] == window["classes_measured"] * 2, name
        assert window["fps"]["min"] > 0, name
        assert all(n["cpu_pct"] > 0 for n in window["nodes"] if n["classes"]), name
    assert [n["classes"] for n in scale_out["after_failover"]["nodes"]] == [2]
    assert scale_out["all_classes"]["max_ratio_to_one_process_alone"] > 0
    failover = scale_out["failover"]
    assert failover["students"] == failover["students_back"] == 2 and failover["teachers_back"] == 1
    assert failover["killed_node_state"] == "dead" and failover["sessions_now_on_live_nodes"]
    assert failover["media_back_s"]["n"] == 2 and failover["errors"] == []
    assert {
        "scale_out_placement",
        "scale_out_placement_together",
        "scale_out_cpu_per_class",
        "scale_out_fps",
        "scale_out_failover_p95",
    } <= {t["key"] for t in results["targets"]}
    assert "failover: SIGKILL of" in printed

    # nothing left behind: the database dropped, the Redis keys deleted
    assert scale_out["database"] not in asyncio.run(_databases())
    assert not list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{scale_out['redis_prefix']}:*"))


def test_quick_chat_loses_no_acknowledged_message_on_either_store(tmp_path):
    """`--chat 2` alone: a teacher and two students chat (steadily, then in two bursts, then the
    teacher's last word) on SQLite, then on a fresh PostgreSQL database; the server is killed (SIGKILL)
    right after the last answer and every acknowledged message is in chat_messages. About 27 s."""
    out = tmp_path / "chat.json"
    results, printed = quick_bench(
        out, *ONLY, "--chat", "2", "--chat-window", "2", "--postgres", POSTGRES_ADMIN_DSN, timeout=180
    )
    assert results["failed"] == [] and results["scenarios"] == []
    chats = results["chat"]
    assert [c["store"] for c in chats] == ["sqlite", "postgresql"]
    for chat in chats:
        steady, bursts, every, stored = chat["steady"], chat["bursts"], chat["all"], chat["stored"]
        assert chat["students"] == 2 and "error" not in chat and "cleanup_errors" not in chat
        assert steady["sent"] >= 3 and steady["acknowledged"] == steady["sent"] and steady["not_acknowledged"] == {}
        assert steady["students_ack_ms"]["n"] >= 2 and steady["teacher_ack_ms"]["n"] >= 1
        assert steady["server_cpu_pct"] >= 0 and steady["messages_per_s"] > 0
        assert bursts["count"] == len(bursts["each"]) == 2 and bursts["sent"] == bursts["acknowledged"] == 4
        assert every["acknowledged"] == steady["acknowledged"] + bursts["acknowledged"] == every["ack_ms"]["n"]
        assert every["ack_ms"]["median"] > 0 and every["ack_ms"]["p95"] >= every["ack_ms"]["median"]
        # every acknowledged message is in the store after the SIGKILL, and nothing else is; the
        # teacher's last message too, acknowledged just before the kill
        assert stored["lost"] == 0 and stored["rows"] == stored["acknowledged"] == every["acknowledged"] + 1
        assert stored["last_message"] == {"acknowledged": True, "stored": True}
        assert chat["killed_after_last_answer_ms"] >= 0
    assert chats[0]["steady"]["transactions"] is None and chats[1]["steady"]["transactions"] >= 1
    targets = {t["key"]: t for t in results["targets"]}
    assert targets["chat_ack_p95_sqlite"]["met"] is None and targets["chat_ack_p95_postgresql"]["met"] is None
    assert "chat acknowledgement (the records committed first)" in printed
    assert chats[1]["database"] not in asyncio.run(_databases())  # dropped


def test_quick_profile_shows_where_the_servers_time_goes(tmp_path):
    """`--profile 2` on a tiny full class: the unmodified server under cProfile (bench.profiled_serve, switched
    on and off by signals) for the join storm and 2 s of steady forwarding, and the floor of one forwarded
    packet on this machine. Checks that both profiles name the forwarding path and count its packets."""
    out = tmp_path / "profile.json"
    results, printed = quick_bench(
        out,
        "--students",
        "off",
        "--full-class",
        "2:1",
        "--recording",
        "off",
        "--relay",
        "0",
        "--window",
        "2",
        "--profile",
        "2",
        timeout=180,
    )
    assert results["failed"] == []
    profile = results["profile"]
    assert profile["storm"]["admitted"] == 2 and profile["storm"]["without_first_frame"] == 0
    for name in ("join_storm", "steady"):
        part = profile[name]
        assert part["forwarded_packets"] > 0 and part["python_calls_per_forwarded_packet"] > 0, name
        assert part["calls_per_forwarded_packet"] and part["self_time"], name
    steady = profile["steady"]
    # the forwarder's own functions, named by their place in the project wherever it is checked out
    functions = [c["function"] for c in steady["cumulative"]]
    assert any(f.startswith("on_packet (media/forwarder.py:") for f in functions), functions
    assert steady["c_calls"]["libsrtp srtp_protect (encrypt + authenticate)"]["calls"] > 0
    assert results["floor"]["loopback_sendto_us"] > 0 and results["floor"]["srtp_protect_us"] > 0
    assert "server under cProfile, steady forwarding" in printed


async def _databases() -> list[str]:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        return [r["datname"] for r in await connection.fetch("SELECT datname FROM pg_database")]
    finally:
        await connection.close()


# The same cause as the weak-link tests in test_weak_links.py: now and then a weak student is back on the high
# camera layer inside the 6 s window (a try up on a 5 % link), seen in about one CI run in two; passing alone.
# Run again once, said in the report, until the link control is fixed (issue 16's note).
@pytest.mark.timing  # the layers a weak link gets, measured over time: run alone (Makefile)
@pytest.mark.flaky(reruns=1)
def test_quick_weak_link_puts_the_weak_students_on_the_low_layers_and_not_the_others(tmp_path):
    """`--weak-link` tiny: 4 students, 2 of them each behind a user-space bad link, a clean window then
    one with those links at 300 kbit/s, 5 % loss, 100 ms each way (6 s each). The report's numbers are
    measurements: the weak students decode the low layers, the clean ones stay on the high ones, the
    server's you:link says so too, and the layer selection's CPU is read from /metrics. About 40 s."""
    out = tmp_path / "weak.json"
    results, printed = quick_bench(
        out, *ONLY, "--weak-link", "0.1", "--weak-link-class", "4:2", "--weak-link-decode", "1", timeout=240
    )
    assert results["failed"] == [] and results["scenarios"] == []
    weak_link = results["weak_link"]
    assert weak_link["students"] == 4 and weak_link["weak_students"] == 2
    assert weak_link["decoding"] == {"weak": 2, "clean": 1, "clean_counting_rtp_only": 1}
    for label in ("baseline", "weak"):
        window = weak_link[label]
        assert len(window["students"]) == 4 and all(s["error"] is None for s in window["students"])
        assert window["server"]["cpu_pct"] > 0 and window["server"]["selection_cpu_s"] is not None
        assert window["server"]["selection_share_of_server_cpu_pct"] is not None
        clean = window["groups"]["clean"]
        assert clean["students"] == 2 and clean["decoding"] == 1
        assert clean["camera_layers"] == {"camera": 2} and clean["screen_layers"] == {"screen": 2}
        assert clean["camera_fps"]["min"] > 20 and clean["screen_fps"]["min"] > 8
        assert clean["received_mb_per_min"]["min"] > 5 and clean["server_data_mb_per_min"]["min"] > 5
        assert clean["audio_longest_lost_s"] is not None and clean["you_link_camera_reduced_share"] == 0
    baseline, weak = weak_link["baseline"]["groups"]["weak"], weak_link["weak"]["groups"]["weak"]
    assert baseline["camera_layers"] == {"camera": 2} and baseline["you_link_camera_reduced_share"] == 0
    # impaired: the low layers, by the decoded frames' size and by the server's you:link
    assert weak["decoding"] == 2 and weak["camera_layers"] == {"camera_low": 2}
    assert weak["screen_layers"] == {"screen_low": 2}
    assert weak["camera_fps"]["min"] > 0 and weak["you_link_camera_reduced_share"] > 0
    assert weak["audio_lost_pct"]["mean"] > 0  # 5 % of the datagrams are dropped on the way
    assert 0 < weak["received_mb_per_min"]["mean"] < 0.5 * baseline["received_mb_per_min"]["mean"]
    assert weak["relay_down_mb_per_min"]["mean"] < 300_000 / 8 * 60 / 1e6 * 1.05  # the link's 2.25 MB/min
    assert weak_link["switch"]["to_low_layers_s"]["n"] == 2 and weak_link["switch"]["not_on_low_within_30_s"] == 0
    assert weak_link["ratios"]["weak"]["received_mb_per_min"] < 0.5
    assert "weak links (4 students, 2 on 300 kbit/s" in printed


def test_a_short_soak_keeps_every_record_and_stops_cleanly(tmp_path):
    """`python -m bench.soak` scaled down: a real server process, a teacher and three students (one receiving
    the teacher's camera) for 0.3 minutes, sampled every 3 s, then the period ended, the server stopped
    with SIGTERM and its store read. The half-hour soak of docs/benchmarks.md is this with its defaults;
    this proves the tool still runs and checks what it checks. About 90 s of wall time, 15 s of CPU."""
    out = tmp_path / "soak.json"
    run = run_module(
        "bench.soak",
        "0.3",
        "--students",
        "3",
        "--media",
        "1",
        "--sample",
        "3",
        "--no-priority",
        "--out",
        str(out),
        timeout=300,
    )
    soak = json.loads(out.read_text())
    assert soak["problems"] == [] and soak["failed_students"] == {}
    assert soak["churn"]["admissions_acknowledged"] == soak["churn"]["lobby_entries"] == 3
    assert soak["media"]["teacher_camera_frames_received"] > 0  # the media student saw the teacher's camera
    records = soak["records"]
    assert records["lost"] == 0 and records["mismatches"] == []
    assert records["chat"]["rows"] == records["chat"]["acknowledged"] and records["chat"]["stored_without_ok"] == 0
    assert records["per_kind"]["admitted"] == {"expected": 3, "stored": 3}
    assert records["attendance"]["intervals"] >= 4 and records["attendance"]["open"] == 0  # all closed at the end
    assert soak["server_stop"]["exit_code"] == 0 and soak["server_log"]["tracebacks"] == 0
    assert soak["samples"] and all(s["rss_mb"] > 0 for s in soak["samples"])
    assert "lost: 0" in run.stdout
