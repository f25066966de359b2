"""The records as tables (header + rows) with bilingual headers and labels, for CSV and XLSX files:
a session's attendance and chat, and a class's attendance summary (with the students' assessment scores). Times are
the school's local time."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from liveclass.archive.search import SCHOOL_TIMEZONE
from liveclass.models import ChatMessage, Period, User

Table = tuple[list[str], list[list[Any]]]

STATUS_LABELS = {
    "present": "Có mặt / Present",
    "late": "Đi muộn / Late",
    "absent": "Vắng / Absent",
    "denied": "Bị từ chối / Denied",
    "not_admitted": "Không được cho vào / Not admitted",
}
ROLE_LABELS = {
    "teacher": "Giáo viên / Teacher",
    "student": "Học sinh / Student",
    "observer": "Dự giờ / Observer",
    "guest": "Khách / Guest",
    "parent": "Phụ huynh / Parent",
    "admin": "Quản trị / Admin",
}
END_REASONS = {
    "dropped": "mất kết nối / dropped",
    "left": "rời lớp / left",
    "ended": "buổi học kết thúc / ended",
    "grace_expired": "không vào lại / did not come back",
    "kicked": "bị mời ra / removed",
    "logged_out": "đăng xuất / logged out",
    "replaced": "vào từ thiết bị khác / joined elsewhere",
    "superseded": "vào lại / rejoined",
    "server_stopped": "máy chủ dừng / server stopped",
}
YES_NO = {True: "Có / Yes", False: "Không / No"}

ATTENDANCE_HEADER = [
    "STT / No.",
    "Họ và tên / Name",
    "Mã định danh / Personal ID",
    "Vai trò / Room role",
    "Trong danh sách lớp / Enrolled",
    "Trạng thái / Status",
    "Vào lớp lúc / Arrived at",
    "Số phút có mặt / Minutes present",
    "Số phút đi muộn / Minutes late",
    "Phút bật camera / Camera minutes",
    "Phút bật micro / Microphone minutes",
    "Phút chia sẻ màn hình / Screen minutes",
    "Số lần giơ tay / Hands raised",
    "Số tin nhắn / Messages",
    "Các lần có mặt / Presence intervals",
    "Người cho vào / Admitted by",
    "Người từ chối / Denied by",
    "Lý do từ chối / Reason denied",
]
CHAT_HEADER = [
    "Thời gian / Time",
    "Người gửi / From",
    "Mã định danh người gửi / From personal ID",
    "Gửi riêng cho / To (private)",
    "Loại / Kind",
    "Nội dung / Text",
    "Đã xoá lúc / Deleted at",
    "Người xoá / Deleted by",
    "Mã tin nhắn / Message ID",
]
CLASS_SUMMARY_HEADER = [
    "STT / No.",
    "Họ và tên / Name",
    "Mã định danh / Personal ID",
    "Số buổi / Sessions",
    "Có tham gia / Attended",
    "Có mặt đúng giờ / On time",
    "Đi muộn / Late",
    "Vắng / Absent",
    "Tỉ lệ chuyên cần (%) / Attendance rate (%)",
    "Số phút có mặt / Minutes present",
    "Số phút đi muộn / Minutes late",
    "Phút bật camera / Camera minutes",
    "Số lần giơ tay / Hands raised",
    "Số tin nhắn / Messages",
    "Số bài kiểm tra / Assessments",
    "Số bài đã làm / Assessments answered",
    "Tổng điểm / Score",
    "Điểm tối đa / Max score",
    "Tỉ lệ điểm (%) / Score (%)",
]


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return value.astimezone(SCHOOL_TIMEZONE).strftime(fmt) if value else ""


def _clock(value: datetime | None, day: str) -> str:
    """A time of the school's clock: HH:MM:SS on the period's day, with the date on any other."""
    if value is None:
        return "…"
    return local_time(value, "%H:%M:%S" if local_time(value, "%Y-%m-%d") == day else "%Y-%m-%d %H:%M:%S")


def _intervals_text(line, day: str) -> str:
    """ "08:01:10–08:20:00 (mất kết nối / dropped); 08:21:00–08:40:00 (rời lớp / left)" """
    parts = []
    for stretch in line.stretches:
        reason = END_REASONS.get(stretch.end_reason, stretch.end_reason) if stretch.end_reason else None
        parts.append(
            f"{_clock(stretch.joined_at, day)}–{_clock(stretch.left_at, day)}" + (f" ({reason})" if reason else "")
        )
    return "; ".join(parts)


def attendance_table(lines, period: Period) -> Table:
    """One row per person of a session (archive.attendance.session_attendance)."""
    day = local_time(period.starts_at, "%Y-%m-%d")
    rows = []
    for number, line in enumerate(lines, 1):
        view = line.view()
        rows.append(
            [
                number,
                line.name,
                line.personal_id,
                ROLE_LABELS.get(line.room_role, line.room_role),
                YES_NO[bool(line.enrolled)],
                STATUS_LABELS.get(line.status, line.status),
                local_time(line.arrived_at),
                view["minutes_present"],
                view["minutes_late"],
                view["camera_minutes"],
                view["microphone_minutes"],
                view["screen_minutes"],
                view["hands_raised"],
                view["messages"],
                _intervals_text(line, day),
                view.get("admitted_by") or "",
                view.get("denied_by") or "",
                view.get("denied_reason") or "",
            ]
        )
    return ATTENDANCE_HEADER, rows


def chat_table(chat: Sequence[ChatMessage], people: dict[int, User]) -> Table:
    """Every message, private and deleted ones marked; `people`: everyone the messages name."""

    def name(user_id: int | None) -> str:
        return people[user_id].full_name if user_id in people else ""

    rows = [
        [
            local_time(m.at),
            name(m.sender_id),
            people[m.sender_id].personal_id if m.sender_id in people else "",
            name(m.recipient_id),
            m.kind,
            m.text,
            local_time(m.deleted_at),
            name(m.deleted_by_id),
            m.id,
        ]
        for m in chat
    ]
    return CHAT_HEADER, rows


def class_summary_table(lines) -> Table:
    """One row per student of a class over a date range (archive.attendance.class_summary)."""
    rows = []
    for number, line in enumerate(lines, 1):
        view = line.view()
        rate = view["attendance_rate"]
        rows.append(
            [
                number,
                line.name,
                line.personal_id,
                view["sessions"],
                view["attended"],
                view["present"],
                view["late"],
                view["absent"],
                round(rate * 100, 1) if rate is not None else "",
                view["minutes_present"],
                view["minutes_late"],
                view["camera_minutes"],
                view["hands_raised"],
                view["messages"],
                view["assessments"],
                view["assessments_answered"],
                "" if view["score"] is None else view["score"],
                "" if view["max_score"] is None else view["max_score"],
                "" if view["score_rate"] is None else round(view["score_rate"] * 100, 1),
            ]
        )
    return CLASS_SUMMARY_HEADER, rows
