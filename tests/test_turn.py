"""TURN with short-lived credentials (liveclass/turn.py) against a real coturn: the join answer carries a
credential of its own, a relay-only aiortc client receives the teacher's media through coturn with it,
coturn refuses it once expired (but keeps a relay set up in time), counts its user quota per account,
and a half-done TURN configuration stops the start with a clear message.

coturn (Debian's `turnserver`) must be installed: these tests fail, never skip, without it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from bench.ports import free_port
from liveclass import turn
from tests.helpers import make_settings, seed_school, start_server
from tests.live import LiveClient, admitted
from tests.media.peers import which_pattern, wait_for
from tests.media.room_peer import RoomPeer
from tests.test_cli import assert_clean_failure, liveclass

REALM = "turn.test.liveclass"
CANDIDATE_LINE = re.compile(r"^a=candidate:.*$", re.MULTILINE)


# -- a real coturn ------------------------------------------------------------------------------------
@dataclass
class Coturn:
    port: int
    secret: str
    log: Path

    def url(self, transport: str) -> str:
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _stun_answers(port: int) -> bool:
    """Whether a STUN Binding request to 127.0.0.1:port (UDP) is answered."""
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, secrets.token_bytes(12))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.settimeout(0.2)
        try:
            probe.sendto(request, ("127.0.0.1", port))
            return probe.recv(2048)[8:20] == request[8:20]
        except OSError:  # refused (not listening yet) or timed out
            return False


@pytest.fixture
async def coturn(request, tmp_path):
    """coturn in the foreground on a free port, with the shared-secret scheme; killed at teardown.
    Indirect parametrization adds options: `@pytest.mark.parametrize("coturn", [["--user-quota=2"]], indirect=True)`."""
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail(
            "coturn is not installed (no `turnserver`): run `apt-get install -y coturn`; "
            "the TURN tests need a real TURN server"
        )
    port, secret, log = free_port(udp=True), secrets.token_hex(24), tmp_path / "coturn.log"
    # The recipe's `--log-file stdout` is block-buffered into a file; coturn flushes its own log file at
    # once, and --simple-log keeps that file's name as given. Its own pid file and user database: not
    # the system's /var/run and /var/lib/turn.
    with (tmp_path / "coturn.out").open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                "-n",
                "-v",
                "--use-auth-secret",
                f"--static-auth-secret={secret}",
                f"--realm={REALM}",
                "-L",
                "127.0.0.1",
                "--relay-ip",
                "127.0.0.1",
                "--listening-port",
                str(port),
                "--no-cli",
                "--no-tls",
                "--no-dtls",
                "--allow-loopback-peers",
                "--log-file",
                str(log),
                "--simple-log",
                "--pidfile",
                str(tmp_path / "coturn.pid"),
                "--userdb",
                str(tmp_path / "turndb"),
                *getattr(request, "param", []),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while not await asyncio.to_thread(_stun_answers, port):
            if process.poll() is not None or time.monotonic() > deadline:
                output = (tmp_path / "coturn.out").read_text(errors="replace")
                logged = log.read_text(errors="replace") if log.exists() else ""
                pytest.fail(
                    f"coturn did not start on port {port} (exit {process.poll()}):\n{(output + logged)[-3000:]}"
                )
            await asyncio.sleep(0.1)
        yield Coturn(port, secret, log)
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def server(request, tmp_path, coturn):
    """The conftest's server, with TURN configured against this test's coturn: its STUN as the static
    `ice_servers`, its UDP and TCP TURN URLs as `turn_urls`, and the media server on 127.0.0.1 only (the
    address coturn relays to). `@pytest.mark.settings(...)` adds settings."""
    marker = request.node.get_closest_marker("settings")
    settings = {
        "ice_servers": [{"urls": [f"stun:127.0.0.1:{coturn.port}"]}],
        "turn_urls": [coturn.url("udp"), coturn.url("tcp")],
        "turn_secret": coturn.secret,
        "media_host_addresses": ["127.0.0.1"],
        **(marker.kwargs if marker else {}),
    }
    live = await start_server(make_settings(tmp_path / "var", **settings))
    yield live
    await live.close()


# -- helpers ------------------------------------------------------------------------------------------
def turn_entry(join: dict) -> dict:
    """The TURN entry of a join answer (the one with a credential)."""
    [entry] = [s for s in join["ice_servers"] if s["credential"]]
    return entry


def relay_only(entry: dict, url: str | None = None) -> RTCConfiguration:
    """A WebRTC configuration that uses only the TURN relay, as a browser with iceTransportPolicy "relay".

    The installed aiortc (1.16) has RTCConfiguration.iceTransportPolicy, so the candidate lines of the SDP
    need no filtering: with RELAY, aioice gathers no host or server-reflexive candidate at all, so neither
    side can pair anything but the relay, and no direct path (which filtering the SDP alone would not
    prevent: the server would still answer checks from our host address) can win over it. The SDP we
    send is checked to hold relay candidates only (`only_relay_candidates`). aiortc uses one TURN URL.
    """
    server = RTCIceServer(
        urls=[url] if url else entry["urls"], username=entry["username"], credential=entry["credential"]
    )
    return RTCConfiguration(
        iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
    )  # as tests/media/peers.py's CONFIG


def only_relay_candidates(sdp: str) -> list[str]:
    """The candidate lines of `sdp`, asserting there is at least one and all are `typ relay`."""
    lines = CANDIDATE_LINE.findall(sdp)
    assert lines, f"no candidate gathered:\n{sdp}"
    assert all(" typ relay" in line for line in lines), lines
    return lines


def selected_local_candidate_type(pc: RTCPeerConnection) -> str:
    """The type of the local candidate of the pair ICE selected (aioice's nominated pair: aiortc has no
    candidate-pair stats)."""
    ice = pc.getTransceivers()[0].receiver.transport.transport
    pairs = ice.iceGatherer._connection._nominated  # noqa: SLF001 - no public accessor in aiortc
    assert pairs, "ICE selected no pair"
    return pairs[1].local_candidate.type


class RelaySubscriber:
    """A student's subscribe connection (the server offers, we answer) through TURN only."""

    def __init__(self, client: LiveClient, config: RTCConfiguration):
        self.client, self.config = client, config
        self.pc: RTCPeerConnection | None = None
        self.patterns: list[str | None] = []
        self.audio_frames = 0
        self.answer_sdp = ""
        self.tasks: list[asyncio.Task] = []

    async def subscribe(self) -> None:
        mark = self.client.mark()
        await self.client.ok("rtc:subscribe")
        offer = await self.client.wait_for("rtc:offer", after=mark)
        slot_of_mid = {s["mid"]: s["slot"] for s in offer["slots"]}
        pc = self.pc = RTCPeerConnection(self.config)

        @pc.on("track")
        def on_track(track):
            slot = slot_of_mid[next(t.mid for t in pc.getTransceivers() if t.receiver.track is track)]
            if slot in ("teacher_camera", "teacher_audio"):
                self.tasks.append(asyncio.ensure_future(self._read(track)))

        await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        self.answer_sdp = pc.localDescription.sdp
        await self.client.ok("rtc:answer", {"sdp": self.answer_sdp})

    async def _read(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.patterns.append(which_pattern(frame))
                else:
                    self.audio_frames += 1
        except Exception:  # noqa: BLE001 - the track ended
            return

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.pc:
            await self.pc.close()


async def gather(config: RTCConfiguration) -> tuple[RTCPeerConnection, list[str]]:
    """A connection that made an offer with `config` (holding its TURN allocations until closed), and the
    candidate lines of that offer (gathering waits for the TURN server's answer)."""
    pc = RTCPeerConnection(config)
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, CANDIDATE_LINE.findall(pc.localDescription.sdp)


async def gathered_candidates(config: RTCConfiguration) -> list[str]:
    """The candidate lines an offer made with `config` carries; the connection is closed again."""
    pc, lines = await gather(config)
    await pc.close()
    return lines


def expected_credential(secret: str, username: str) -> str:
    """coturn's check, written out here independently of liveclass/turn.py."""
    return base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()


# -- media through coturn -----------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relay_only_student_receives_the_teacher_through_turn(server, school, period, coturn, transport):
    session_id, teacher = period
    student = await admitted(teacher, await server.logged_in(school.student), session_id)
    entry = turn_entry(student.join)  # the join answer this student connected with
    url = coturn.url(transport)
    assert url in entry["urls"]

    teacher_peer = RoomPeer(teacher)  # the teacher on camera and microphone, directly (no TURN)
    receiver = RelaySubscriber(student, relay_only(entry, url))
    try:
        await teacher_peer.publish("A")
        await teacher.ok("media:state", {"camera": True, "microphone": True})
        await receiver.subscribe()
        # Only relay candidates were offered to the server: there is no other way in.
        relay_lines = only_relay_candidates(receiver.answer_sdp)
        assert all(" 127.0.0.1 " in line for line in relay_lines)  # coturn's relay address

        await wait_for(lambda: "A" in receiver.patterns, 20, "the teacher's camera through TURN")
        await wait_for(lambda: receiver.audio_frames >= 50, 20, "a second of the teacher's voice through TURN")
        assert selected_local_candidate_type(receiver.pc) == "relay"
        assert f"user <{entry['username']}>: incoming packet ALLOCATE processed, success" in coturn.log_text()

        # coturn really carried it: when the allocation ends, coturn logs what it received from the peer
        # (the media server) for this username, and that is at least every audio packet we decoded.
        heard = receiver.audio_frames
        await receiver.close()
        await wait_for(
            lambda: f"delete: realm=<{REALM}>, username=<{entry['username']}>" in coturn.log_text(),
            10,
            "coturn to close the allocation",
        )
        relayed = max(
            int(n)
            for n in re.findall(  # coturn may log the same totals twice: take the largest
                rf"peer usage: realm=<{re.escape(REALM)}>, username=<{re.escape(entry['username'])}>, rp=(\d+)",
                coturn.log_text(),
            )
        )
        assert relayed >= heard, (relayed, heard)
    finally:
        await receiver.close()
        await teacher_peer.close()


async def test_coturn_refuses_an_expired_or_forged_credential(server, school, period, coturn):
    session_id, _ = period
    join = await (await server.logged_in(school.student)).json("POST", f"/sessions/{session_id}/join")
    entry = turn_entry(join)
    url = coturn.url("udp")

    # The credential the join answer gave: coturn allocates a relay.
    fresh = await gathered_candidates(relay_only(entry, url))
    assert fresh and all(" typ relay" in line for line in fresh), fresh

    # The same scheme and the right secret, but an expiry one minute in the past: no relay.
    opaque = entry["username"].split(":", 1)[1]
    expired_name = f"{int(time.time()) - 60}:{opaque}"
    expired = {**entry, "username": expired_name, "credential": expected_credential(coturn.secret, expired_name)}
    assert expired["credential"] == turn.credential(coturn.secret, expired_name)
    assert await gathered_candidates(relay_only(expired, url)) == []
    assert f"user <{expired_name}>: incoming packet message processed, error 401" in coturn.log_text()

    # A future expiry made with another secret (what a student who forges one would do): no relay either.
    forged_name = f"{int(time.time()) + 3600}:{opaque}"
    forged = {**entry, "username": forged_name, "credential": expected_credential("not-the-secret-1234", forged_name)}
    assert await gathered_candidates(relay_only(forged, url)) == []
    assert f"user <{forged_name}>: incoming packet message processed, error 401" in coturn.log_text()


async def test_coturn_checks_the_expiry_when_a_relay_is_set_up_not_when_it_is_refreshed(coturn):
    """What LIVECLASS_TURN_CREDENTIAL_SECONDS is sized by (docs/operations.md, section 7), pinned for the
    installed coturn: a relay set up in time survives a refresh after the expiry; a new relay with the same
    credential is refused. The lifetime must cover every relay a client sets up with one join answer."""
    username = f"{int(time.time()) + 2}:{turn.pseudonym('k' * 32, 1)}"
    endpoint, _ = await create_turn_endpoint(
        asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username, turn.credential(coturn.secret, username)
    )
    try:
        client = endpoint._TurnTransport__inner_protocol  # noqa: SLF001 - aioice's TURN client, to refresh now
        await asyncio.sleep(max(0.0, int(username.split(":")[0]) + 1.2 - time.time()))  # past the expiry
        refresh = stun.Message(message_method=stun.Method.REFRESH, message_class=stun.Class.REQUEST)
        refresh.attributes["LIFETIME"] = 600
        answer, _ = await client.request(refresh)
        assert answer.message_class == stun.Class.RESPONSE and answer.attributes["LIFETIME"] == 600
    finally:
        endpoint.close()
    with pytest.raises((ConnectionError, stun.TransactionError)):
        await create_turn_endpoint(
            asyncio.DatagramProtocol, ("127.0.0.1", coturn.port), username, turn.credential(coturn.secret, username)
        )
    assert f"user <{username}>: incoming packet REFRESH processed, success" in coturn.log_text()


@pytest.mark.parametrize("coturn", [["--user-quota=2"]], indirect=True)
async def test_coturn_counts_its_user_quota_per_account_across_joins(server, school, period, coturn):
    """coturn counts `user-quota` on the part of the username after the expiry: the account's pseudonym
    (liveclass/turn.py). A student who joins again gets a new username, but not a new quota."""
    session_id, teacher = period
    student = await server.logged_in(school.student)
    first = turn_entry(await student.json("POST", f"/sessions/{session_id}/join"))
    await asyncio.sleep(1.1)  # the next whole second: the next join's expiry, so its username, differs
    second = turn_entry(await student.json("POST", f"/sessions/{session_id}/join"))
    assert first["username"] != second["username"]
    url = coturn.url("udp")
    held: list[RTCPeerConnection] = []
    try:
        for entry in (first, second):  # two relays for the student, one per join: within the quota
            pc, lines = await gather(relay_only(entry, url))
            held.append(pc)
            assert lines and all(" typ relay" in line for line in lines), lines
        pc, lines = await gather(relay_only(second, url))  # a third: over the quota
        held.append(pc)
        assert lines == []
        assert f"user <{second['username']}>: incoming packet ALLOCATE processed, error 486" in coturn.log_text()
        # The teacher has a quota of her own.
        pc, lines = await gather(relay_only(turn_entry(teacher.join), url))
        held.append(pc)
        assert lines and all(" typ relay" in line for line in lines), lines
    finally:
        for pc in held:
            await pc.close()


# -- the join answer ----------------------------------------------------------------------------------
@pytest.mark.settings(turn_credential_seconds=7200)
async def test_the_join_answer_has_a_short_lived_credential_and_no_secret(server, school, period, coturn, caplog):
    caplog.set_level(logging.DEBUG)
    session_id, _ = period
    student = await server.logged_in(school.student)
    before = int(time.time())
    response = await student.request("POST", f"/sessions/{session_id}/join")
    after = int(time.time())
    assert response.status == 200
    raw = await response.text()
    join = await response.json()

    assert coturn.secret not in raw
    assert join["ice_servers"][0] == {
        "urls": [f"stun:127.0.0.1:{coturn.port}"],
        "username": None,
        "credential": None,
    }  # the static ice_servers come first, unchanged
    entry = turn_entry(join)
    assert entry["urls"] == [coturn.url("udp"), coturn.url("tcp")]
    match = re.fullmatch(r"(\d+):([0-9a-f]+)", entry["username"])
    assert match, entry["username"]
    expiry, opaque = int(match[1]), match[2]
    assert before + 7200 <= expiry <= after + 7200
    assert entry["credential"] == expected_credential(coturn.secret, entry["username"])
    # Nothing personal in the username: no personal ID, no name; the opaque part is a keyed hash of the
    # internal account id, not a plain hash anyone can compute for every id.
    user = school.student
    assert user.personal_id not in entry["username"] and user.full_name not in entry["username"]
    assert opaque == turn.pseudonym(server.settings.secret_key, user.id) and opaque != str(user.id)
    assert opaque not in {
        h(str(user.id).encode()).hexdigest()[: len(opaque)] for h in (hashlib.sha256, hashlib.sha1, hashlib.md5)
    }

    # Stable per account (coturn's log tells one person's relays apart), different between accounts,
    # and every join gets its own expiry, counted from that join.
    other = await join_as(server, school.teacher, session_id)
    await asyncio.sleep(1.1)  # the next whole second: the next join's expiry is later
    again = turn_entry(await student.json("POST", f"/sessions/{session_id}/join"))
    assert again["username"].split(":", 1)[1] == opaque
    assert int(again["username"].split(":", 1)[0]) > expiry
    assert turn_entry(other)["username"].split(":", 1)[1] != opaque

    # The secret is in no log record and no repr of the settings.
    assert coturn.secret not in repr(server.settings) and coturn.secret not in str(server.settings)
    assert not [r for r in caplog.records if coturn.secret in r.getMessage()]


async def join_as(server, user, session_id: int) -> dict:
    return await (await server.logged_in(user)).json("POST", f"/sessions/{session_id}/join")


async def test_without_turn_the_join_answer_is_the_static_ice_servers(tmp_path):
    live = await start_server(make_settings(tmp_path / "var", ice_servers=[{"urls": ["stun:stun.example.org"]}]))
    try:
        school = await seed_school(live)
        teacher = await live.logged_in(school.teacher)
        session = await teacher.json("POST", f"/periods/{school.period.id}/start", expect=201)
        join = await teacher.json("POST", f"/sessions/{session['id']}/join")
        assert join["ice_servers"] == [{"urls": ["stun:stun.example.org"], "username": None, "credential": None}]
    finally:
        await live.close()


# -- configuration ------------------------------------------------------------------------------------
SECRET = "coturn-static-auth-secret-0123456789"
URLS = '["turn:turn.truong.edu.vn:3478?transport=udp", "turns:turn.truong.edu.vn:443?transport=tcp"]'

TURN_MISCONFIGURATIONS = {
    "urls without secret": ({"LIVECLASS_TURN_URLS": URLS}, ("turn_secret", "LIVECLASS_TURN_SECRET is not")),
    "secret without urls": ({"LIVECLASS_TURN_SECRET": SECRET}, ("turn_urls", "LIVECLASS_TURN_URLS is not")),
    "a stun url": (
        {"LIVECLASS_TURN_URLS": '["stun:turn.truong.edu.vn:3478"]', "LIVECLASS_TURN_SECRET": SECRET},
        ("turn_urls", "not a TURN URL"),
    ),
    "urls not json": (
        {"LIVECLASS_TURN_URLS": "turn:turn.truong.edu.vn:3478", "LIVECLASS_TURN_SECRET": SECRET},
        ("turn_urls",),
    ),
    "short secret": ({"LIVECLASS_TURN_URLS": URLS, "LIVECLASS_TURN_SECRET": "abc123"}, ("turn_secret", "at least 16")),
    "lifetime too short": (
        {"LIVECLASS_TURN_URLS": URLS, "LIVECLASS_TURN_SECRET": SECRET, "LIVECLASS_TURN_CREDENTIAL_SECONDS": "30"},
        ("turn_credential_seconds", "60"),
    ),
    "lifetime too long": (
        {"LIVECLASS_TURN_URLS": URLS, "LIVECLASS_TURN_SECRET": SECRET, "LIVECLASS_TURN_CREDENTIAL_SECONDS": "100000"},
        ("turn_credential_seconds", "86400"),
    ),
}


@pytest.mark.parametrize("case", TURN_MISCONFIGURATIONS)
def test_a_half_done_turn_configuration_stops_with_one_clear_message(tmp_path, case):
    env, needles = TURN_MISCONFIGURATIONS[case]
    result = liveclass("db", "upgrade", data_dir=tmp_path / "var", env=env, timeout=60)
    line = assert_clean_failure(result, *needles)
    assert SECRET not in line and "abc123" not in line  # the secret is never echoed


def test_a_complete_turn_configuration_is_accepted_and_its_secret_not_printed(tmp_path):
    env = {"LIVECLASS_TURN_URLS": URLS, "LIVECLASS_TURN_SECRET": SECRET, "LIVECLASS_TURN_CREDENTIAL_SECONDS": "14400"}
    result = liveclass("db", "upgrade", data_dir=tmp_path / "var", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
