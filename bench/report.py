"""What the numbers say: the per-student cost fit, the baseline ratio, the issue's targets, the
table printed at the end of a run, and the PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = {
    "cpu_per_video_stream": "CPU per forwarded 30 fps video stream <= 0.2 % of one core",
    "full_class_latency_p95": "forwarding latency p95 <= 15 ms in a full class",
    "full_class_cpu": "full class (camera + mic + screen, 45 students, 5 student cameras) on <= 50 % of one core",
    "full_class_fps": "full class: every student >= 29 fps",
    "storm_first_frame": "45 students admitted at once all show a first frame within 0.5 s",
    "rss_per_participant": "<= 2 MB RSS per participant",
    "scale_out_placement": "several nodes: classes placed evenly (most minus fewest classes on a node <= 1)",
    "scale_out_placement_together": "several nodes: classes placed evenly when every period starts at the same "
    "moment (most minus fewest <= 1)",
    "scale_out_cpu_per_class": "several nodes: each node's CPU per class within 10 % of one process hosting one "
    "class alone (ratio <= 1.10)",
    "scale_out_fps": "several nodes: every student >= 29 fps",
    "scale_out_failover_p95": "a killed node's students receive the teacher's camera again within 10 s (p95, "
    "the node TTL included)",
    "chat_ack_p95_sqlite": "chat acknowledgement p95 <= 50 ms in a class of 45 students (SQLite)",
    "chat_ack_p95_postgresql": "chat acknowledgement p95 <= 50 ms in a class of 45 students (PostgreSQL)",
}


def _fit(points: list[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares line y = a + b x."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if not sxx:
        return None
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    return my - b * mx, b


def _target(
    key: str, measured: Any, limit: float, unit: str, scenario: str | None, lower_is_better: bool = True, note: str = ""
) -> dict:
    met = None if measured is None else (measured <= limit if lower_is_better else measured >= limit)
    return {
        "key": key,
        "target": TARGETS[key],
        "limit": limit,
        "measured": measured,
        "unit": unit,
        "scenario": scenario,
        "met": met,
        **({"note": note} if note else {}),
    }


def conclusions(results: dict) -> dict:
    scenarios = [s for s in results["scenarios"] if s.get("server")]
    out: dict[str, Any] = {}
    fit = _fit([(s["students"], s["server"]["cpu_pct"]) for s in scenarios])
    if fit:
        out["fit"] = {
            "server_cpu_pct": f"{fit[0]:.2f} + {fit[1]:.3f} x students",
            "intercept_pct": round(fit[0], 2),
            "per_student_pct": round(fit[1], 3),
        }
    largest = max(scenarios, key=lambda s: s["students"]) if scenarios else None
    # The SFU's cost per subscriber from the largest class: the biggest difference to the teacher
    # alone, so the least disturbed by the ticks and noise that dominate a 5-student class.
    sfu_per_student = largest["server"]["cpu_per_student_pct"] if largest else None
    relay = results.get("relay_baseline")
    if relay and relay.get("server") and largest and sfu_per_student:  # (sfu_per_student: from largest)
        relay_per_student = relay["server"]["cpu_per_student_pct"]
        out["baseline"] = {
            "relay_cpu_per_subscriber_pct": relay_per_student,
            "sfu_cpu_per_subscriber_pct": round(sfu_per_student, 3),
            "sfu_scenario": largest["name"],
            "ratio": round(relay_per_student / sfu_per_student, 1) if sfu_per_student > 0 else None,
            "relay_subscribers": relay["students"],
        }
    full = results.get("full_class") if results.get("full_class", {}).get("server") else None
    storm = next((s for s in scenarios if s["students"] == 45), largest)
    small = " (not judged: the target is for a class of 45 students{})"
    targets = []
    if largest:
        targets.append(
            _target(
                "cpu_per_video_stream",
                largest["server"]["cpu_per_video_stream_pct"],
                0.2,
                "% of one core",
                largest["name"],
                note="packet-proportional share of the server CPU added by the students",
            )
        )
        targets.append(
            _target(
                "rss_per_participant",
                largest["server"]["rss_per_participant_mb"],
                2.0,
                "MB",
                largest["name"],
                note="(RSS with the students - RSS with the teacher alone) / students",
            )
        )
    if storm:
        first = storm["join_storm"]["first_frame_s"]
        missing = storm["join_storm"]["without_first_frame"]
        measured = None if first["max"] is None else (first["max"] if not missing else float("inf"))
        target = _target(
            "storm_first_frame",
            measured,
            0.5,
            "s (max)",
            storm["name"],
            note=f"{storm['join_storm']['admitted']} admitted at once; median {first['median']} s"
            + (f"; {missing} without a first frame" if missing else ""),
        )
        if storm["students"] < 45:
            target["met"], target["note"] = None, target["note"] + small.format("")
        targets.append(target)
    if full:
        full_size = full["students"] >= 45 and full["student_cameras"] >= 5
        for target in (
            _target("full_class_cpu", full["server"]["cpu_pct"], 50.0, "% of one core", full["name"]),
            _target(
                "full_class_fps",
                full["students_view"]["fps"]["min"],
                29.0,
                "fps (min)",
                full["name"],
                lower_is_better=False,
            ),
            _target("full_class_latency_p95", full["latency_ms"]["p95"], 15.0, "ms", full["name"]),
        ):
            if not full_size:
                target["met"], target["note"] = None, small.format(" with 5 student cameras").strip()
            targets.append(target)
    targets += _scale_out_targets(results.get("scale_out"))
    targets += [_chat_target(c) for c in results.get("chat", []) if c.get("all")]
    out["targets"] = targets
    return out


def _scale_out_targets(so: dict | None) -> list[dict]:
    """The scale-out scenario's targets, from whatever part of it ran."""
    if not so:
        return []
    name = so["name"]
    targets = []
    if so.get("placement"):
        targets.append(
            _target(
                "scale_out_placement",
                so["placement"]["spread"],
                1,
                "classes",
                name,
                note=f"classes per node: {so['placement']['classes_per_node']}",
            )
        )
    if so.get("placement_started_together"):
        together = so["placement_started_together"]
        targets.append(
            _target(
                "scale_out_placement_together",
                together["spread"],
                1,
                "classes",
                name,
                note=f"classes per node: {together['classes_per_node']}",
            )
        )
    every = so.get("all_classes")
    if every:
        targets.append(
            _target(
                "scale_out_cpu_per_class",
                every["max_ratio_to_one_process_alone"],
                1.10,
                "x (max)",
                name,
                note=f"one class alone: {every['one_process_alone_cpu_pct']} % of a core",
            )
        )
        targets.append(_target("scale_out_fps", every["fps"]["min"], 29.0, "fps (min)", name, lower_is_better=False))
    failover = so.get("failover")
    if failover:
        back, total = failover["students_back"], failover["students"]
        p95 = failover["media_back_s"]["p95"]
        targets.append(
            _target(
                "scale_out_failover_p95",
                p95 if back == total else float("inf"),
                10.0,
                "s",
                name,
                note=f"{back} of {total} back; node TTL {so['node_ttl_s']:g} s",
            )
        )
    return targets


def _chat_target(chat: dict) -> dict:
    """p95 over every acknowledged message of one store's chat scenario (steady and bursts). Not met
    whatever the p95 if a message was lost or not acknowledged; not judged below 45 students."""
    every, stored = chat["all"], chat["stored"]
    failures = stored["lost"] + every["sent"] - every["acknowledged"]
    p95 = every["ack_ms"]["p95"]
    note = (
        f"steady p95 {chat['steady']['ack_ms']['p95']} ms, bursts p95 {chat['bursts']['ack_ms']['p95']} ms; "
        f"{stored['lost']} lost, not acknowledged: {every['not_acknowledged'] or 'none'}"
    )
    target = _target(
        f"chat_ack_p95_{chat['store']}",
        p95 if not failures or p95 is None else float("inf"),
        50.0,
        "ms",
        chat["name"],
        note=note,
    )
    if chat["students"] < 45:
        target["met"], target["note"] = None, note + " (not judged: the target is for a class of 45 students)"
    return target


def chat_report(results: dict) -> str | None:
    """The chat acknowledgement per store and phase."""
    chats = results.get("chat")
    if not chats:
        return None
    lines = []
    for c in chats:
        if not c.get("all"):
            lines.append([c["name"], "failed", *[""] * 7])
            continue
        phases = (
            ("steady", f"steady, {c['steady']['messages_per_s']:g} msg/s"),
            ("bursts", f"{c['bursts']['count']} bursts of {c['bursts']['size']}"),
            ("all", "all"),
        )
        for key, label in phases:
            phase = c[key]
            refused = sum(phase["not_acknowledged"].values())
            lines.append(
                [
                    c["name"],
                    label,
                    str(phase["acknowledged"]),
                    _fmt(phase["ack_ms"]["median"], 1),
                    _fmt(phase["ack_ms"]["p95"], 1),
                    _fmt(phase["ack_ms"]["max"], 1),
                    str(refused),
                    str(c["stored"]["lost"]) if key == "all" else "",
                    _fmt(c["steady"]["server_cpu_pct"], 1) if key == "steady" else "",
                ]
            )
    head = [
        "scenario",
        "phase",
        "acknowledged",
        "p50 ms",
        "p95 ms",
        "max ms",
        "not acknowledged",
        "lost",
        "server CPU %",
    ]
    parts = [
        f"chat acknowledgement (the records committed first), {chats[0]['students']} students:",
        markdown_table(head, lines),
    ]
    parts += [_chat_line(c) for c in chats if c.get("all")]
    parts += [f"{c['name']} FAILED: {c['error']}" for c in chats if c.get("error")]
    return "\n".join(parts)


def _chat_line(chat: dict) -> str:
    """Where one store's time went: the server's CPU per message, and each burst's spread."""
    steady, bursts = chat["steady"], chat["bursts"]
    each = "; ".join(
        f"{_fmt(b['first_answer_ms'], 0)}-{_fmt(b['last_answer_ms'], 0)} ms, server busy "
        f"{_fmt(b['server_busy_pct'], 0)} %, clients {_fmt(b['clients_busy_cores'], 2)} cores"
        for b in bursts["each"]
    )
    transactions = (
        ""
        if not steady.get("transactions")
        else (
            f"; transactions: {steady['transactions']} for the steady messages, "
            f"{bursts['transactions']} for the bursts'"
        )
    )
    last = chat["stored"]["last_message"]
    return (
        f"{chat['name']}: steady {steady['server_cpu_ms_per_message']} ms of server CPU per message "
        f"(clients {steady['clients_cpu_pct']} % of a core, other load {steady['other_processes_busy_cores']} "
        f"cores); bursts, first-last answer: {each}{transactions}; SIGKILL "
        f"{_fmt(chat.get('killed_after_last_answer_ms'), 1)} ms after the last answer, whose message was "
        f"{'' if last['stored'] else 'NOT '}stored"
    )


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict) -> str:
    rows = [s for s in results["scenarios"]]
    if results.get("full_class"):
        rows.append(results["full_class"])
    if results.get("relay_baseline"):
        rows.append(results["relay_baseline"])
    head = [
        "scenario",
        "students",
        "server CPU %",
        "teacher only %",
        "CPU/student %",
        "us/pkt",
        "CPU/video stream %",
        "RSS/particip. MB",
        "fps median",
        "fps min",
        "loss %",
        "latency med ms",
        "latency p95 ms",
        "storm 1st frame med s",
        "storm max s",
        "late joiner s",
        "other load (cores)",
    ]
    lines = []
    for s in rows:
        if not s.get("server"):
            lines.append([s["name"], str(s["students"])] + ["failed"] + [""] * (len(head) - 3))
            continue
        v, st = s["server"], s["students_view"]
        storm = s.get("join_storm", {}).get("first_frame_s", {})
        lines.append(
            [
                s["name"],
                str(s["students"]),
                _fmt(v["cpu_pct"], 1),
                _fmt(v["cpu_teacher_only_pct"], 1),
                _fmt(v["cpu_per_student_pct"], 3),
                _fmt(v["us_per_forwarded_packet"], 1),
                _fmt(v["cpu_per_video_stream_pct"], 3),
                _fmt(v["rss_per_participant_mb"], 2),
                _fmt(st["fps"]["median"], 1),
                _fmt(st["fps"]["min"], 1),
                _fmt(st["loss_pct"], 3),
                _fmt(s["latency_ms"]["median"], 2),
                _fmt(s["latency_ms"]["p95"], 2),
                _fmt(storm.get("median"), 3),
                _fmt(storm.get("max"), 3),
                _fmt(s.get("late_joiner_first_frame_s"), 3),
                _fmt(s.get("machine_load", {}).get("other_processes_busy_cores"), 2),
            ]
        )
    return markdown_table(head, lines)


def markdown_table(head: list[str], lines: list[list[str]]) -> str:
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(fmt(line) for line in lines)])


def recording_table(results: dict) -> str | None:
    """The recording cost: the same class unrecorded, recorded, unrecorded again (one server)."""
    rec = (results.get("recording_cost") or {}).get("recording")
    if not rec:
        return None
    head = [
        "window",
        "server CPU %",
        "kernel %",
        "other threads %",
        "RSS MB",
        "fps median",
        "fps min",
        "loss %",
        "latency med ms",
        "latency p95 ms",
        "teacher keyframes",
        "other load (cores)",
    ]
    lines = []
    for name, label in (
        ("unrecorded_before", "unrecorded"),
        ("recorded", "recorded"),
        ("unrecorded_after", "unrecorded again"),
    ):
        w = rec["windows"][name]
        lines.append(
            [
                label,
                _fmt(w["server_cpu_pct"], 1),
                _fmt(w["server_cpu_kernel_pct"], 1),
                _fmt(w.get("server_cpu_outside_main_thread_pct"), 1),
                _fmt(w["server_rss_mb"], 1),
                _fmt(w["fps_median"], 1),
                _fmt(w["fps_min"], 1),
                _fmt(w["loss_pct"], 3),
                _fmt(w["latency_median_ms"], 2),
                _fmt(w["latency_p95_ms"], 2),
                _fmt(w["teacher_keyframes"]),
                _fmt(w["other_processes_busy_cores"], 2),
            ]
        )
    return markdown_table(head, lines)


def recording_line(results: dict) -> str | None:
    scenario = results.get("recording_cost") or {}
    rec = scenario.get("recording")
    if not rec:
        return None
    files = ", ".join(f"{f['source']} {f['bytes_on_disk'] / 1e6:.2f} MB" for f in rec["files"])
    return (
        f"recording cost ({scenario['students']} students, {scenario['student_cameras']} student camera"
        f"{'' if scenario['student_cameras'] == 1 else 's'}, "
        f"teacher camera + microphone + screen): server CPU {rec['server_cpu_unrecorded_pct']:.1f} % of a core "
        f"unrecorded, {rec['server_cpu_recorded_pct']:.1f} % recorded: {rec['server_cpu_difference_pct']:+.1f} "
        f"points, ratio {rec['server_cpu_ratio']} (the recorder's thread: "
        f"{_fmt(rec.get('recorder_thread_cpu_pct'), 1)} % of a core); "
        f"written {rec['window_media_mb_per_minute']:.2f} MB/minute "
        f"({rec['window_media_bytes_per_s'] / 1000:.1f} kB/s) while recording, {rec['mb_per_minute']} MB/minute "
        f"over the whole recording ({(rec['duration_ms'] or 0) / 1000:.1f} s); "
        f"{len(rec['files'])} files, {'all' if rec['files_ok'] else 'NOT all'} non-empty ({files})"
    )


def scale_out_report(results: dict) -> str | None:
    """Several nodes: placement, each node's CPU per class against one node hosting one class alone,
    the students' fps, and the failover after a node was killed."""
    so = results.get("scale_out")
    if not so:
        return None
    parts = [
        f"scale-out: {so['nodes']} nodes, {so['classes']} classes of {so['students_per_class']} students, "
        f"node TTL {so['node_ttl_s']:g} s"
    ]
    if so.get("placement"):
        parts.append(
            f"placement, periods started one after another: {so['placement']['classes_per_node']} "
            f"({'even' if so['placement']['even'] else 'NOT even'})"
        )
    if so.get("placement_started_together"):
        together = so["placement_started_together"]
        parts.append(
            f"placement, periods started at the same moment: {together['classes_per_node']} "
            f"({'even' if together['spread'] <= 1 else 'NOT even'})"
        )
    alone, every, after = so.get("one_process_alone"), so.get("all_classes"), so.get("after_failover")
    lines = []
    for label, window in (("one class alone", alone), ("every class", every), ("after the kill", after)):
        for node in (window or {}).get("nodes", []):
            lines.append(
                [
                    label,
                    f"{node['name']} ({node['node']})",
                    str(node["classes"]),
                    _fmt(node["cpu_pct"], 1),
                    _fmt(node["cpu_per_class_pct"], 1),
                    _fmt(node.get("ratio_to_one_process_alone"), 2),
                    _fmt(node["rss_mb"], 0),
                    _fmt(window["fps"]["min"], 1),
                    _fmt(window["fps"]["median"], 1),
                    _fmt(window["machine_load"]["clients_cpu_pct"], 0),
                    _fmt(window["machine_load"]["other_processes_busy_cores"], 2),
                ]
            )
    if lines:
        parts.append(
            markdown_table(
                [
                    "window",
                    "node",
                    "classes",
                    "CPU %",
                    "CPU/class %",
                    "ratio to alone",
                    "RSS MB",
                    "fps min",
                    "fps median",
                    "clients CPU %",
                    "other load (cores)",
                ],
                lines,
            )
        )
    single = next(
        (s for s in results.get("scenarios", []) if s["students"] == so["students_per_class"] and s.get("server")), None
    )
    if single and every:
        parts.append(
            f"one class alone on a node: {every['one_process_alone_cpu_pct']} % of a core; the single-process "
            f"scenario {single['name']} of this run (SQLite, no Redis, the teacher's camera encoded live): "
            f"{single['server']['cpu_pct']} %"
        )
    f = so.get("failover")
    if f:
        media, frame = f["media_back_s"], f["first_frame_back_s"]
        parts.append(
            f"failover: SIGKILL of {f['killed_node']} ({f['classes_moved']} classes): {f['students_back']} of "
            f"{f['students']} students and {f['teachers_back']} of {f['classes_moved']} teachers back; "
            f"teacher camera again (first RTP) after p50 {_fmt(media['median'], 2)} s, "
            f"p95 {_fmt(media['p95'], 2)} s, max {_fmt(media['max'], 2)} s (first keyframe: p95 "
            f"{_fmt(frame['p95'], 2)} s), counted from the kill, the {so['node_ttl_s']:g} s TTL included; "
            f"refused or failed joins: {f['refusals'] or 'none'}"
        )
    if so.get("error"):
        parts.append(f"scale-out FAILED: {so['error']}")
    return "\n".join(parts)


def text_report(results: dict) -> str:
    has_rows = results["scenarios"] or results.get("full_class") or results.get("relay_baseline")
    parts = [table(results), ""] if has_rows else []
    if "fit" in results:
        parts.append(f"server CPU (% of one core) = {results['fit']['server_cpu_pct']}")
    base = results.get("baseline")
    if base:
        parts.append(
            f"MediaRelay baseline: {base['relay_cpu_per_subscriber_pct']:.2f} % of a core per subscriber "
            f"({base['relay_subscribers']} subscribers) vs {base['sfu_cpu_per_subscriber_pct']:.3f} % "
            f"forwarded ({base['sfu_scenario']}): ratio {base['ratio']}x"
        )
    rec_table, rec_line = recording_table(results), recording_line(results)
    if rec_table and rec_line:  # (both or neither: from the recording cost's numbers)
        parts += ["", rec_table, rec_line]
    elif results.get("recording_cost"):
        parts += ["", f"recording cost: failed ({results['recording_cost'].get('error')})"]
    if scale_out := scale_out_report(results):
        parts += ["", scale_out]
    if chat := chat_report(results):
        parts += ["", chat]
    if results.get("weak_link"):
        from bench.weaklink import report as weak_link_report

        parts += ["", weak_link_report(results["weak_link"])]
    parts.append("")
    parts.append("targets:")
    for t in results.get("targets", []):
        state = {True: "MET ", False: "MISS", None: "n/a "}[t["met"]]
        measured = t["measured"]
        measured = f"{measured:.3f}" if isinstance(measured, float) else str(measured)
        parts.append(
            f"  [{state}] {t['target']}: {measured} {t['unit']} ({t['scenario']})"
            + (f" {t['note']}" if t["met"] is None and t.get("note") else "")
        )
    profile = results.get("profile") or {}
    if results.get("floor"):
        f = results["floor"]
        parts.append("")
        parts.append(
            f"floor per forwarded packet on this machine: loopback sendto {f['loopback_sendto_us']} us + "
            f"SRTP protect {f['srtp_protect_us']} us (CPU, {f['packet_bytes']}-byte packets)"
        )
    for phase, title in (("steady", "steady forwarding"), ("join_storm", "join storm")):
        prof = profile.get(phase)
        if not prof:
            continue
        parts.append("")
        parts.append(
            f"server under cProfile, {title} ({profile['scenario']}): {prof['forwarded_packets']} packets "
            f"forwarded, {prof['python_calls_per_forwarded_packet']} Python calls per forwarded packet; "
            f"server CPU {prof.get('server_cpu_seconds')} s in {prof['wall_seconds']} s under the profiler"
        )
        for entry in prof["self_time"][:10]:
            parts.append(f"  {entry['share_pct']:5.1f} %  {entry['calls']:>8} calls  {entry['function']}")
    return "\n".join(parts)


def plot(results: dict, path: Path) -> str | None:
    """Write the PNG; returns None, or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'liveclass[bench]'): no plot"
    scenarios = [s for s in results["scenarios"] if s.get("server")]
    full = results.get("full_class") if (results.get("full_class") or {}).get("server") else None
    relay = results.get("relay_baseline") if (results.get("relay_baseline") or {}).get("server") else None
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    m = results["machine"]
    fig.suptitle(f"liveclass bench, {results['started_at'][:10]}: {m['nproc']} x {m['cpu_model']}", fontsize=11)

    ax = axes[0][0]
    xs = [s["students"] for s in scenarios]
    ax.plot(xs, [s["server"]["cpu_pct"] for s in scenarios], "o-", label="LiveClass SFU (camera + mic)")
    if full:
        ax.plot(
            [full["students"]],
            [full["server"]["cpu_pct"]],
            "s",
            color="tab:green",
            label=f"full class (+ screen, {full['student_cameras']} student cameras)",
        )
    rec = (results.get("recording_cost") or {}).get("recording")
    if rec:
        n = results["recording_cost"]["students"]
        ax.plot(
            [n * 1.03],
            [rec["server_cpu_unrecorded_pct"]],
            "D",
            mfc="none",
            color="tab:purple",
            label="the same class, unrecorded (mean of 2 windows)",
        )
        ax.plot(
            [n * 1.03],
            [rec["server_cpu_recorded_pct"]],
            "D",
            color="tab:purple",
            label=f"... recorded: {rec['server_cpu_difference_pct']:+.1f} points, "
            f"{rec['window_media_mb_per_minute']:.1f} MB/min written",
        )
    if relay:
        base = relay["server"]["cpu_teacher_only_pct"]
        per = relay["server"]["cpu_per_student_pct"]
        top = max(xs + [relay["students"]]) if xs else relay["students"]
        ax.plot(
            [0, top],
            [base, base + per * top],
            "--",
            color="tab:red",
            label=f"MediaRelay (measured at {relay['students']}, extrapolated)",
        )
        ax.plot([relay["students"]], [relay["server"]["cpu_pct"]], "x", color="tab:red")
        ratio = (results.get("baseline") or {}).get("ratio")
        ax.annotate(
            f"MediaRelay {per:.1f} % per subscriber" + (f"\n= {ratio}x the SFU" if ratio else ""),
            (relay["students"], relay["server"]["cpu_pct"]),
            textcoords="offset points",
            xytext=(12, -4),
            fontsize=8,
            color="tab:red",
        )
    ax.axhline(100, color="grey", lw=0.8)
    ax.axhline(50, color="tab:green", lw=0.6, ls=":")
    ax.set_ylim(0, max(110, *(s["server"]["cpu_pct"] * 1.2 for s in scenarios)) if scenarios else 110)
    ax.set_xlabel("students")
    ax.set_ylabel("server CPU, % of one core")
    ax.legend(fontsize=8)
    ax.set_title("server CPU", fontsize=10)

    ax = axes[0][1]
    rows = scenarios + ([full] if full else [])

    def label(s: dict) -> str:  # other processes on the machine during the window disturb the numbers
        other = s.get("machine_load", {}).get("other_processes_busy_cores") or 0
        return s["name"] + (f"\n(other load {other:.1f} cores)" if other >= 0.3 else "")

    names = [label(s) for s in rows]
    ax.bar(names, [s["server"]["cpu_per_video_stream_pct"] or 0 for s in rows], color="tab:blue")
    ax.axhline(0.2, color="tab:green", ls=":", label="target 0.2 %")
    ax.set_ylabel("% of one core per forwarded 30 fps video stream")
    ax2 = ax.twinx()
    ax2.plot(
        names,
        [s["server"]["rss_per_participant_mb"] or 0 for s in rows],
        "o-",
        color="tab:orange",
        label="RSS per participant (MB)",
    )
    ax2.set_ylabel("MB RSS per participant")
    ax2.set_ylim(0, 1.5 * max([s["server"]["rss_per_participant_mb"] or 0 for s in rows] + [1.0]))
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    ax.set_title("cost per stream and memory per participant", fontsize=10)

    ax = axes[1][0]
    med = [s["latency_ms"]["median"] or 0 for s in rows]
    p95 = [s["latency_ms"]["p95"] or 0 for s in rows]
    idx = range(len(rows))
    ax.bar([i - 0.2 for i in idx], med, 0.4, label="median")
    ax.bar([i + 0.2 for i in idx], p95, 0.4, label="p95")
    ax.axhline(15, color="tab:green", ls=":", label="target p95 15 ms")
    ax.set_xticks(list(idx), names)
    ax.set_ylabel("ms, publisher send -> student receive")
    ax.legend(fontsize=8)
    ax.set_title("forwarding latency (teacher camera)", fontsize=10)

    ax = axes[1][1]
    storm_med = [s["join_storm"]["first_frame_s"]["median"] or 0 for s in rows]
    storm_max = [s["join_storm"]["first_frame_s"]["max"] or 0 for s in rows]
    late = [s.get("late_joiner_first_frame_s") or 0 for s in rows]
    ax.bar([i - 0.27 for i in idx], storm_med, 0.27, label="admitted at once: median")
    ax.bar([i for i in idx], storm_max, 0.27, label="admitted at once: max")
    ax.bar([i + 0.27 for i in idx], late, 0.27, label="late joiner")
    ax.axhline(0.5, color="tab:green", ls=":", label="target 0.5 s")
    ax.set_xticks(list(idx), names)
    ax.set_ylabel("s from admission to first teacher frame")
    ax.legend(fontsize=8)
    ax.set_title("time to first frame", fontsize=10)
    for row in axes:
        for a in row:
            a.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
