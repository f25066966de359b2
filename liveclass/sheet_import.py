"""Reading a spreadsheet a school uploads (the question bank's questions, the timetable): one set of rules for
what makes a file unreadable, how a header cell names a column (in Vietnamese, in English, or both, in any
case), and how a bad row is reported (its line, its column, the reason in English and Vietnamese).

The workbook is opened read-only by openpyxl, after checking what its ZIP parts add up to once unpacked (a
2 MB upload must not unpack to gigabytes). openpyxl is imported then, not with this module (it is slow to load)."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable, Sequence


MAX_UNPACKED_BYTES = 64 * 1024 * 1024  # what an XLSX's parts may add up to once unzipped (no zip bombs)
XLSX_MAGIC = b"PK\x03\x04"


class SheetFileError(Exception):
    """The file as a whole cannot be imported: `status` 400 (unreadable, no header) or 413 (too big)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class RowProblem:
    line: int
    column: str
    reason: str  # "English / Tiếng Việt"

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "reason": self.reason}


def words(value: Any) -> str:
    """A cell as compared with names: NFC, case-folded, spaces collapsed, none around a slash."""
    text = " ".join(unicodedata.normalize("NFC", str(value)).casefold().split())
    return text.replace(" / ", "/").replace("/ ", "/").replace(" /", "/")


def header_key(label: Any, columns: Sequence[tuple[str, str]], aliases: dict[str, str] | None = None) -> str | None:
    """The column a header cell names: its full "Tiếng Việt / English" label, either half, its key, or an alias."""
    said = words(label or "")
    if not said:
        return None
    for key, full in columns:
        if said in {words(full), key, *(words(part) for part in full.split(" / "))}:
            return key
    return (aliases or {}).get(said)


def column_positions(
    header: Iterable[Any],
    columns: Sequence[tuple[str, str]],
    required: Iterable[str],
    aliases: dict[str, str] | None = None,
) -> dict[str, int]:
    """Column key → its index in the header row (the first cell naming it); SheetFileError if a required one is
    missing."""
    where: dict[str, int] = {}
    for index, label in enumerate(header):
        key = header_key(label, columns, aliases)
        if key and key not in where:
            where[key] = index
    missing = [label for key, label in columns if key in set(required) and key not in where]
    if missing:
        raise SheetFileError(
            400,
            "bad_header",
            f"line 1: the header lacks the columns {', '.join(missing)} "
            "(download the template). / dòng 1: thiếu cột "
            f"{', '.join(missing)} (hãy tải tệp mẫu).",
        )
    return where


def open_workbook(data: bytes, unreadable_code: str):
    """The XLSX workbook (read-only, values not formulas); SheetFileError `unreadable_code` if it is not one."""
    unreadable = SheetFileError(
        400,
        unreadable_code,
        "The file could not be read as an Excel workbook (.xlsx). "
        "/ Không đọc được tệp như một bảng tính Excel (.xlsx).",
    )
    if not data.startswith(XLSX_MAGIC):
        raise unreadable
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            unpacked = sum(info.file_size for info in package.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise SheetFileError(
                413,
                "file_too_large",
                "The workbook unpacks to more than 64 MB. / Bảng tính quá lớn khi giải nén (trên 64 MB).",
            )
        from openpyxl import load_workbook

        return load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetFileError:
        raise
    except Exception:  # noqa: BLE001 - a damaged ZIP, a ZIP that is no workbook, broken XML: many kinds
        raise unreadable from None
