"""Tables as files a school opens in Excel: CSV (UTF-8 with BOM) and XLSX.

CSV: UTF-8 with a byte-order mark and CRLF line ends, so Excel shows Vietnamese names; a text cell that
a spreadsheet would take for a formula (= + - @, tab, CR) gets a leading apostrophe (names and chat are
user input). Excel still reads a personal ID such as 001234567890 from a CSV as a number (1.23457E+11,
the leading zeros gone), which is why the same tables also come as XLSX.

XLSX (openpyxl, the maintained library for the format; streamed row by row in write-only mode): every
text is a text cell with the text format "@", so IDs keep their zeros and nothing is ever a formula;
numbers are numbers; the header is bold and stays in view, with a filter on it. openpyxl is imported when a
workbook is made, not with this module: it costs a quarter of a second at every server and command start.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MAX_WIDTH = 60


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never runs: a leading apostrophe before = + - @ (and tab, CR)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM and CRLF line ends: what Excel needs to show Vietnamese names."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def xlsx_bytes(sheet_title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """One sheet: the header row, then the rows. Text stays text (IDs keep leading zeros; never a formula)."""
    return xlsx_book([(sheet_title, header, rows)])


def xlsx_book(sheets: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]]) -> bytes:
    """Several sheets, each (title, header, rows): the header bold, in view and filtered, then the rows."""
    from openpyxl import Workbook
    from openpyxl.cell import Cell, WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    def cell(sheet, value: Any, **style) -> Cell:
        if isinstance(value, bool):
            value = int(value)
        if value is not None and not isinstance(value, (int, float, str)):
            value = str(value)
        if isinstance(value, str):
            value = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters are not allowed in the format
        made = WriteOnlyCell(sheet, value=value)
        if isinstance(value, str):
            made.data_type, made.number_format = "s", "@"  # text, even "=…" or "0012…"
        for name, setting in style.items():
            setattr(made, name, setting)
        return made

    workbook = Workbook(write_only=True)
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    for sheet_title, header, rows in sheets:
        sheet = workbook.create_sheet(title=_sheet_title(sheet_title))
        sheet.freeze_panes = "A2"
        for index, label in enumerate(header, 1):
            longest = max([len(str(label))] + [len(str(row[index - 1])) for row in rows[:500] if len(row) >= index])
            sheet.column_dimensions[get_column_letter(index)].width = min(_MAX_WIDTH, longest + 2)
        if rows:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(rows) + 1}"
        sheet.append([cell(sheet, label, font=bold, alignment=wrap) for label in header])
        for row in rows:
            sheet.append([cell(sheet, value) for value in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _sheet_title(title: str) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\."""
    cleaned = "".join("-" if c in "[]:*?/\\" else c for c in title).strip("'") or "Sheet"
    return cleaned[:31]
