"""Names of the files the archive hands out: an ASCII name for old clients and the real Vietnamese one."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote


def fold(text: str) -> str:
    """Vietnamese to ASCII: "Toán Đại số" -> "Toan Dai so"."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _slug(text: str, ascii_only: bool) -> str:
    if ascii_only:
        text = fold(text)
        text = re.sub(r"[^A-Za-z0-9._]+", "-", text)
    else:
        text = "".join(c if c.isalnum() or c in "._" else "-" for c in unicodedata.normalize("NFC", text))
    return re.sub(r"-{2,}", "-", text).strip("-.") or "x"


def download_names(parts: list[str], extension: str) -> tuple[str, str]:
    """(ASCII name, Unicode name): ["liveclass", "10A1", "Toán", "2026-11-22"], "zip" ->
    liveclass-10A1-Toan-2026-11-22.zip and liveclass-10A1-Toán-2026-11-22.zip"""
    return tuple(
        "-".join(_slug(part, ascii_only) for part in parts) + "." + extension  # type: ignore[return-value]
        for ascii_only in (True, False)
    )


def content_disposition(ascii_name: str, unicode_name: str) -> str:
    """An attachment with an ASCII fallback name and the real one in RFC 5987 form (filename*); an ASCII name
    alone when the real one is ASCII."""
    if unicode_name == ascii_name:
        return f'attachment; filename="{ascii_name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(unicode_name, safe='')}"
