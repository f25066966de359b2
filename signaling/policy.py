"""Who may do what in a live room: the one policy table, consulted for every request.

Room roles: teacher, student, observer, guest. `ACTIONS` gives the roles that may ever do an action;
per-participant grants and the room's locks then narrow what students and guests may do right now
(see `Permissions`).
"""

from __future__ import annotations

from dataclasses import dataclass

TEACHER, STUDENT, OBSERVER, GUEST = "teacher", "student", "observer", "guest"
LEARNERS = frozenset({STUDENT, GUEST})

ACTIONS: dict[str, frozenset[str]] = {
    "room:sync": frozenset({TEACHER, STUDENT, OBSERVER, GUEST}),
    "room:leave": frozenset({TEACHER, STUDENT, OBSERVER, GUEST}),
    "room:end": frozenset({TEACHER}),
    "lobby:admit": frozenset({TEACHER}),
    "lobby:deny": frozenset({TEACHER}),
    "chat:send": frozenset({TEACHER, STUDENT, GUEST}),  # observers: private to the teacher only (below)
    "chat:send_private": frozenset({TEACHER, STUDENT, GUEST, OBSERVER}),
    "chat:delete": frozenset({TEACHER}),
    "hand:raise": frozenset({STUDENT, GUEST}),
    "hand:lower": frozenset({TEACHER, STUDENT, GUEST}),  # learners: their own hand only
    "media:state": frozenset({TEACHER, STUDENT, GUEST}),
    "media:saver": frozenset({TEACHER, STUDENT, OBSERVER, GUEST}),
    "media:grid": frozenset({TEACHER}),  # the teacher's gallery page: whose cameras fill her grid slots
    "mod:mute": frozenset({TEACHER}),
    "mod:kick": frozenset({TEACHER}),
    "mod:lock": frozenset({TEACHER}),
    "mod:permit": frozenset({TEACHER}),
    "mod:stage": frozenset({TEACHER}),
    "rtc:publish": frozenset({TEACHER, STUDENT, GUEST}),
    "rtc:subscribe": frozenset({TEACHER, STUDENT, OBSERVER, GUEST}),
    "rtc:answer": frozenset({TEACHER, STUDENT, OBSERVER, GUEST}),
    "rtc:candidate": frozenset({TEACHER, STUDENT, OBSERVER, GUEST}),
    "rec:start": frozenset({TEACHER}),
    "rec:stop": frozenset({TEACHER}),
    "rec:pause": frozenset({TEACHER}),
    "rec:resume": frozenset({TEACHER}),
    "poll:open": frozenset({TEACHER}),
    "poll:close": frozenset({TEACHER}),
    "poll:next": frozenset({TEACHER}),
    "poll:reveal": frozenset({TEACHER}),
    "poll:answer": frozenset({STUDENT}),  # not guests (parents do not answer), not observers
}

SOURCES = ("camera", "microphone", "screen")
PERMISSION_NAMES = ("camera", "microphone", "screen", "chat")
LOCKABLE = ("room", "microphones", "cameras", "chat")
_LOCK_OF = {"camera": "cameras", "microphone": "microphones", "chat": "chat"}

# What each role may do when nothing is locked and nothing was granted or revoked.
DEFAULT_GRANTS: dict[str, dict[str, bool]] = {
    TEACHER: {"camera": True, "microphone": True, "screen": True, "chat": True},
    STUDENT: {"camera": True, "microphone": True, "screen": False, "chat": True},
    GUEST: {"camera": True, "microphone": True, "screen": False, "chat": True},
    OBSERVER: {"camera": False, "microphone": False, "screen": False, "chat": True},  # private chat only
}


def may(role: str, action: str) -> bool:
    return role in ACTIONS.get(action, frozenset())


@dataclass
class Permissions:
    """A participant's permissions: role defaults, then the teacher's per-person decisions, then locks.

    A per-person grant beats a lock (the teacher gives one student the floor while microphones are
    locked); a per-person revoke beats everything. Locking again clears the per-person grants.
    """

    role: str
    overrides: dict[str, bool]

    def allowed(self, name: str, locks: dict[str, bool]) -> bool:
        if self.role == TEACHER:
            return True
        if name in self.overrides:
            return self.overrides[name]
        lock = _LOCK_OF.get(name)
        if self.role in LEARNERS and lock and locks.get(lock):
            return False
        return DEFAULT_GRANTS[self.role][name]

    def effective(self, locks: dict[str, bool]) -> dict[str, bool]:
        return {name: self.allowed(name, locks) for name in PERMISSION_NAMES}


def lock_covers(lock: str) -> str | None:
    """The permission a lock governs (None for the room lock)."""
    return {"microphones": "microphone", "cameras": "camera", "chat": "chat"}.get(lock)
