"""`liveclass bench --quick` end to end, tiny: a real server process, a synthetic teacher and two
students through the real protocol, the full-class and MediaRelay scenarios scaled down. Checks the
shape of the JSON and that media flowed; no timing assertions (timings belong in the bench itself)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys


def test_quick_bench_writes_results_and_students_receive_frames(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    run = subprocess.run(
        [sys.executable, "-m", "liveclass.cli", "bench", "--quick", "--students", "2", "--window", "2",
         "--full-class", "2:1", "--relay", "1", "--out", str(out), "--plot", str(png)],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())

    assert {"machine", "options", "scenarios", "full_class", "relay_baseline", "targets", "baseline", "floor"} <= set(results)
    assert results["failed"] == [] and results["machine"]["nproc"] >= 1
    for scenario in [*results["scenarios"], results["full_class"]]:
        assert {"server", "students_view", "latency_ms", "join_storm", "publisher", "teacher_only",
                "late_joiner_first_frame_s"} <= set(scenario), scenario.keys()
        assert {"cpu_pct", "cpu_per_student_pct", "us_per_forwarded_packet", "cpu_per_video_stream_pct",
                "rss_per_participant_mb"} <= set(scenario["server"])
        view = scenario["students_view"]
        assert view["frames_received"] > 0 and view["fps"]["min"] > 0  # every student received frames
        assert view["decoders_created"] == 0  # counted, never decoded
        assert scenario["join_storm"]["without_first_frame"] == 0
        assert scenario["latency_ms"]["frames_matched"] > 0
    assert results["full_class"]["teacher_receives_fps"]  # the teacher receives the student camera
    assert results["relay_baseline"]["students_view"]["frames_received"] > 0
    assert results["baseline"]["ratio"] is not None
    assert {t["key"] for t in results["targets"]} == {
        "cpu_per_video_stream", "full_class_latency_p95", "full_class_cpu", "full_class_fps",
        "storm_first_frame", "rss_per_participant"}
    if importlib.util.find_spec("matplotlib"):
        assert png.read_bytes().startswith(b"\x89PNG")
    else:
        assert "no plot" in run.stdout
