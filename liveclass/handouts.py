"""Handouts (tài liệu): files a teacher gives out during a period, checked by content, not by name."""

from __future__ import annotations

import codecs
import hashlib
import os
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import filetype

from liveclass.errors import ApiError

TEXT_PLAIN = "text/plain"
# The endings a handout's name may have for the type its content was found to be.
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    TEXT_PLAIN: (".txt",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (".docx",),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (".pptx",),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (".xlsx",),
}


@dataclass
class StoredFile:
    stored_name: str
    size: int
    sha256: str
    content_type: str


def safe_filename(name: str) -> str:
    """Keep the teacher's name (Vietnamese included) but nothing that reaches outside a folder or a header."""
    if "%" in name:
        # Clients may percent-encode the name (RFC 7578 4.2; aiohttp does, browsers do for `"`, CR, LF).
        # Decoded before the folder part is cut off, so an encoded `../` is cut off too.
        try:
            name = unquote(name, errors="strict")
        except UnicodeDecodeError:
            pass
    name = unicodedata.normalize("NFC", os.path.basename(name.replace("\\", "/"))).strip()
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?')
    return (name or "tai-lieu")[:200]


def detect_content_type(head: bytes, filename: str) -> str | None:
    """The file's real type from its first bytes (magic numbers); plain text only as UTF-8 .txt."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    if filename.lower().endswith(".txt"):
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # a cut multibyte character at the end is fine
                return None
        return TEXT_PLAIN
    return None


async def store_upload(field, directory: Path, max_bytes: int, allowed: list[str]) -> tuple[StoredFile, str]:
    """Stream one multipart field to disk under a random name; refuse it (and keep nothing) if bad."""
    filename = safe_filename(field.filename or "")
    directory.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    path = directory / stored_name
    digest = hashlib.sha256()
    size = 0
    head = b""
    utf8 = codecs.getincrementaldecoder("utf-8")()  # plain text must be UTF-8 to its last byte
    is_utf8 = True
    try:
        with open(path, "wb") as out:
            while chunk := await field.read_chunk(256 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(413, "file_too_large", f"The file is larger than {_size(max_bytes)}.")
                if len(head) < 8192:
                    head += chunk[: 8192 - len(head)]
                digest.update(chunk)
                is_utf8 = is_utf8 and _decodes(utf8, chunk)
                out.write(chunk)
        if not field.at_eof():  # the body ended before the part's closing boundary: cut off
            raise ApiError(400, "upload_incomplete", "The upload was cut off before the end; send the file again.")
        if size == 0:
            raise ApiError(400, "empty_file", "The file is empty.")
        content_type = detect_content_type(head, filename)
        if content_type == TEXT_PLAIN and not (is_utf8 and _decodes(utf8, b"", final=True)):
            content_type = None
        if content_type not in allowed:
            raise ApiError(
                415,
                "file_type_not_allowed",
                "This kind of file cannot be handed out. Allowed: PDF, images (PNG, JPEG), "
                "Word, PowerPoint, Excel and plain text.",
            )
        expected = EXTENSIONS.get(content_type)
        if expected and not filename.lower().endswith(expected):
            # A name that says one thing and content that is another is how files trick the one who opens them.
            raise ApiError(
                415,
                "file_name_mismatch",
                f"The file's name does not match its content ({', '.join(expected)} expected); "
                "rename it or send the right file.",
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StoredFile(stored_name, size, digest.hexdigest(), content_type), filename


def _decodes(decoder, chunk: bytes, final: bool = False) -> bool:
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError:
        return False
    return True


def _size(n: int) -> str:
    for unit, factor in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"
