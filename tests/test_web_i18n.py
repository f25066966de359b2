"""No English in any Vietnamese screen: every page of the web client is walked in `vi` (tests/web_walk.py) and
every text a person sees or hears (visible text nodes; aria-label, title, placeholder, alt) must be made of
the Vietnamese catalogue's strings (web_client/js/i18n.js, its {placeholders} matching anything), the school's
data (names, classes, subjects, personal IDs from the seed), numbers, times and dates, and a short allow-list.
Code shown as code (<pre>, <code>: a CSV header the import reads) is not interface text.
What is left over is reported, page by page, and fails the test."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select

from liveclass.models import Period, Recording, SchoolClass, User
from tests.browser import needs_chromium
from tests.web_walk import walk

pytestmark = needs_chromium

I18N = Path(__file__).resolve().parent.parent / "web_client" / "js" / "i18n.js"
# Words that are the same in both languages: the product's name, poll letters, units and file types.
ALLOWED = {
    "LiveClass",
    "A",
    "B",
    "C",
    "D",
    "E",
    "F",
    "ID",
    "CSV",
    "XLSX",
    "ZIP",
    "PDF",
    "PNG",
    "JPEG",
    "WebP",
    "GIF",
    "MB",
    "KB",
    "GB",
    "kbit",
    "kbit/s",
    "ms",
    "s",
    "x",
    "×",
    "Email",
    "email",
    "Video",
    "Camera",
    "camera",
    "Micro",
    "micro",
    "Zoom",
    "Meet",
    "TURN",
}

# Every text a person meets: visible text nodes, and the names and hints that screen readers say.
# An element in another language (the "English" switch, lang="en") is not the Vietnamese screen's text.
TEXTS = """() => {
  const out = [];
  const foreign = (el) => { const l = el.closest('[lang]'); return l && !l.lang.startsWith('vi'); };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    const text = node.textContent.replace(/\\s+/g, ' ').trim();
    if (!text || !el || ['SCRIPT', 'STYLE'].includes(el.tagName)) continue;
    if (el.closest('pre, code, kbd, samp')) continue; // a file format or a command, written as the machine reads it
    if (!el.checkVisibility({ visibilityProperty: true }) && !el.closest('svg')) continue;
    if (el.closest('svg') && !el.closest('svg').checkVisibility()) continue;
    if (foreign(el)) continue;
    out.push({ text, where: el.tagName.toLowerCase()
      + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '') });
  }
  for (const el of document.body.querySelectorAll('[aria-label], [title], [placeholder], img[alt]')) {
    if (foreign(el) || !el.checkVisibility()) continue;
    for (const name of ['aria-label', 'title', 'placeholder', 'alt']) {
      const text = (el.getAttribute(name) || '').trim();
      if (text) out.push({ text, where: `${el.tagName.toLowerCase()}[${name}]` });
    }
  }
  return out;
}"""


def catalogue(language: str = "vi") -> dict[str, str]:
    """The catalogue's strings of one language, read from i18n.js."""
    source = I18N.read_text(encoding="utf-8")
    start = source.index(f"\n  {language}: {{")
    end = source.index("\n  },", start)
    pairs = re.findall(r'"([\w.\-]+)":\s*"((?:[^"\\]|\\.)*)"', source[start:end])
    return {key: json.loads(f'"{value}"') for key, value in pairs}


def patterns(strings: dict[str, str]) -> list[tuple[str, re.Pattern]]:
    """One pattern per catalogue string, {placeholders} as wildcards, whole words only; longest first, so
    that a sentence goes before the words it contains. Each with its longest literal part, to skip it fast.
    A string that is all placeholders would match anything: left out."""
    found = []
    for value in set(strings.values()):
        parts = re.split(r"\{\w+\}", value)
        literal = "".join(parts)
        if len(re.sub(r"[\W\d_]", "", literal)) < 2:
            continue
        # A placeholder at either end matches nothing: what fills it is checked as what it is (data, words).
        while parts and not parts[0].strip():
            parts = parts[1:]
        while parts and not parts[-1].strip():
            parts = parts[:-1]
        if not parts:
            continue
        parts[0], parts[-1] = parts[0].lstrip(), parts[-1].rstrip()
        pattern = ".{1,120}?".join(re.escape(p) for p in parts)
        if re.match(r"\w", parts[0]):
            pattern = r"(?<!\w)" + pattern
        if re.search(r"\w$", parts[-1]):
            pattern += r"(?!\w)"
        found.append((len(literal), max(parts, key=len), re.compile(pattern)))
    return [(needle, p) for _, needle, p in sorted(found, key=lambda x: -x[0])]


# The days in dates written by the browser (Intl, vi-VN).
WEEKDAYS = [
    "Thứ Hai",
    "Thứ Ba",
    "Thứ Tư",
    "Thứ Năm",
    "Thứ Sáu",
    "Thứ Bảy",
    "Chủ Nhật",
    "thứ hai",
    "thứ ba",
    "thứ tư",
    "thứ năm",
    "thứ sáu",
    "thứ bảy",
    "chủ nhật",
]
# What an audit entry is about, as the server names it: "session:7", "recording:3" (data, shown as such).
TARGETS = re.compile(r"\b[a-z_]+:\d+\b")
NUMBERS = re.compile(r"[\d:.,/%+\-–—·…()\[\]#*|«»“”\"'!?;=<>]+")


def leftover(text: str, data: list[str], catalogue_patterns: list[tuple[str, re.Pattern]]) -> str:
    """What of `text` is neither the catalogue's, data, numbers nor allowed words. Data may hold common words
    (a file's column "Lớp") and the catalogue may hold words of a name: both orders are tried, and the text
    is explained by either."""
    return min(
        _rest(text, data, catalogue_patterns, data_first=True),
        _rest(text, data, catalogue_patterns, data_first=False),
        key=len,
    )


def _rest(text: str, data: list[str], catalogue_patterns: list[tuple[str, re.Pattern]], data_first: bool) -> str:
    def without_data(text: str) -> str:
        # Longest first (a password or an address before the initials inside it); short ones as whole words.
        for value in sorted(data, key=len, reverse=True):
            if len(value) <= 3:
                text = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", text)
            else:
                text = text.replace(value, " ")
        return TARGETS.sub(" ", text)

    def without_catalogue(text: str) -> str:
        for needle, pattern in catalogue_patterns:
            if needle in text:
                text = pattern.sub(" ", text)
        return text

    text = without_catalogue(without_data(text)) if data_first else without_data(without_catalogue(text))
    words = [w for w in NUMBERS.sub(" ", text).split() if w not in ALLOWED]
    words = [w for w in words if re.search(r"[^\W\d_]", w)]
    return " ".join(words)


async def seed_data(server) -> list[str]:
    """The school's own words on the pages: people's names, personal IDs, classes, subjects, years."""
    async with server.db() as db:
        users = (await db.execute(select(User))).scalars().all()
        classes = (await db.execute(select(SchoolClass))).scalars().all()
        periods = (await db.execute(select(Period))).scalars().all()
        labels = (await db.execute(select(Recording.label))).scalars().all()
    data = {u.full_name for u in users} | {u.personal_id for u in users} | set(WEEKDAYS)
    # A person's initials on an avatar: "NÁ" for Phạm Ngọc Ánh (any two of the name's words, in order).
    for user in users:
        words = user.full_name.split()
        data |= {(a[0] + b[0]).upper() for i, a in enumerate(words) for b in words[i + 1 :]}
    # A recorded file's label, "teacher: Cô Lan" as the recorder writes it: the name is data.
    data |= {label.split(": ", 1)[-1] for label in labels if label}
    data |= {c.name for c in classes} | {c.school_year for c in classes} | {p.subject for p in periods}
    # Seeded texts typed by people (chat, reasons) are data too: tests/archive_seed.py.
    data |= {"Em chào cô ạ", "Bài 3 em chưa hiểu", "Các em mở sách trang 45", "Không thuộc lớp này"}
    return sorted(data, key=len, reverse=True)


async def test_no_english_in_any_vietnamese_screen(server, school, lesson, browser):
    vi = catalogue("vi")
    assert len(vi) > 500  # the catalogue was read
    catalogue_patterns = patterns(vi)
    found: dict[str, list[str]] = {}

    async def visit(name, page):
        data = await seed_data(server)  # after the walk's own seeding
        for item in await page.evaluate(TEXTS):
            rest = leftover(item["text"], data, catalogue_patterns)
            if rest:
                found.setdefault(name, []).append(f'{item["where"]}: "{item["text"]}" → {rest}')

    seen = await walk(server, school, lesson, browser, visit)
    report = "\n".join(f"{page}:\n  " + "\n  ".join(sorted(set(lines))) for page, lines in found.items())
    print(f"Pages walked ({len(seen)}): {', '.join(seen)}")
    print(report or "No text outside the Vietnamese catalogue.")
    assert not found, "Text outside the Vietnamese catalogue:\n" + report


def test_the_leftover_finds_english_and_passes_the_catalogues_words():
    """The checker itself: English is left over; catalogue strings with their placeholders filled are not."""
    vi = catalogue("vi")
    catalogue_patterns = patterns(vi)
    assert leftover("The teacher has turned off your chat.", [], catalogue_patterns)
    assert leftover("timeout", [], catalogue_patterns) == "timeout"
    assert leftover(vi["periods.not_started"].replace("{time}", "08:00"), [], catalogue_patterns) == ""
    assert leftover("Giáo viên: Nguyễn Thị Hà", ["Nguyễn Thị Hà"], catalogue_patterns) == ""
    assert leftover("teacher: Nguyễn Thị Hà", ["Nguyễn Thị Hà"], catalogue_patterns) == "teacher"
