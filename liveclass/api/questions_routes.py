"""The question bank (ngân hàng câu hỏi): teachers' questions by subject and topic, their images, XLSX import
and export (liveclass/questions.py has the rules, liveclass/question_sheets.py the spreadsheet)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select

from liveclass import question_sheets, questions
from liveclass.api.question_schemas import ImportResult, QuestionCreate, QuestionOut, QuestionUpdate, SubjectOut
from liveclass.api.query import Flag, Offset, Query, Whole, trimmed
from liveclass.api.routing import ANY_USER, RouteTable, attachment, current_user, path_int
from liveclass.api.schemas import Ok
from liveclass.api.work import unit_of_work
from liveclass.appkeys import SETTINGS
from liveclass.archive.spreadsheets import XLSX_TYPE
from liveclass.errors import ApiError
from liveclass.models import Question, User, utcnow
from liveclass.sheet_import import SheetFileError

routes = RouteTable("question bank")
ADMIN_OR_TEACHER = {"admin", "teacher"}
QUESTION_FIELDS = ("kind", "text", "options", "correct", "tolerance", "points", "explanation")


class QuestionFilter(Query):
    keeps_empty = frozenset({"topic"})  # `topic=`: the questions filed under no topic

    subject: Annotated[str | None, trimmed()] = Field(None, description="only this subject")
    topic: Annotated[str | None, trimmed()] = Field(
        None, description="only this topic (chapter), exact; empty: the questions under no topic"
    )
    q: Annotated[str | None, trimmed(200)] = Field(None, description="part of the question's text")
    mine: Flag = Field(False, description="true: only the caller's own questions")


class QuestionList(QuestionFilter):
    limit: Whole = Field(1000, ge=1, le=1000)
    offset: Offset = Field(0, description="skip this many")


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "Question not found. / Không tìm thấy câu hỏi.")


def _out(request: web.Request, question: Question) -> dict[str, Any]:
    return questions.question_out(question, current_user(request), request.app[SETTINGS].secret_key)


def _filtered(wanted: QuestionFilter, user: User):
    query = questions.visible(select(Question), user)
    if wanted.subject:
        query = query.where(Question.subject == wanted.subject)
    if wanted.topic is not None:
        query = query.where(Question.topic == wanted.topic)
    if wanted.q:  # "%" and "_" are searched as written (autoescape), not as wildcards
        query = query.where(func.lower(Question.text).contains(wanted.q.lower(), autoescape=True))
    if wanted.mine:
        query = query.where(Question.owner_id == user.id)
    return query.order_by(Question.subject, Question.topic, Question.id)


async def _question(db, user: User, question_id: int, *, edit: bool = False) -> Question:
    """The question if the caller may see it (404 otherwise) and, with `edit`, change it (403 otherwise)."""
    found = (
        await db.execute(questions.visible(select(Question).where(Question.id == question_id), user))
    ).scalar_one_or_none()
    if found is None:
        raise _not_found()
    if edit and not questions.may_edit(user, found):
        raise ApiError(
            403,
            "forbidden",
            "Only the question's author or an admin may change it. "
            "/ Chỉ người soạn câu hỏi hoặc quản trị viên được sửa câu hỏi này.",
        )
    return found


async def _read_body(request: web.Request, limit: int, too_large: ApiError) -> bytes:
    """A file sent as the raw request body, refused as soon as it is larger than `limit`."""
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _checked(data: dict[str, Any], subject: Any, topic: Any) -> tuple[dict[str, Any], str, str]:
    fields, problems = questions.check_question(data)
    subject, topic, place_problems = questions.check_place(subject, topic)
    if problems or place_problems:
        raise questions.refuse(place_problems + problems)
    return fields, subject, topic


async def _image_still_used(db, sha256: str) -> bool:
    return (
        await db.execute(select(func.count()).select_from(Question).where(Question.image_sha256 == sha256))
    ).scalar_one() > 0


# -- routes without an id first: /questions/{question_id} would otherwise take "subjects" ---------------
@routes.route(
    "GET",
    "/questions",
    summary="The questions the caller may use (own, and shared in a subject they teach)",
    access=ADMIN_OR_TEACHER,
    response=QuestionOut,
    many=True,
    query=QuestionList,
)
async def list_questions(request: web.Request, query: QuestionList) -> web.Response:
    user = current_user(request)
    async with unit_of_work(request) as work:
        found = (await work.db.execute(_filtered(query, user).limit(query.limit).offset(query.offset))).scalars().all()
        return web.json_response({"items": [_out(request, q) for q in found]})


@routes.route(
    "GET",
    "/questions/subjects",
    summary="The subjects and topics of the questions the caller may use",
    access=ADMIN_OR_TEACHER,
    response=SubjectOut,
    many=True,
)
async def list_subjects(request: web.Request) -> web.Response:
    query = questions.visible(select(Question.subject, Question.topic, func.count()), current_user(request))
    async with unit_of_work(request) as work:
        rows = (
            await work.db.execute(
                query.group_by(Question.subject, Question.topic).order_by(Question.subject, Question.topic)
            )
        ).all()
    subjects: dict[str, dict[str, Any]] = {}
    for subject, topic, count in rows:
        entry = subjects.setdefault(subject, {"subject": subject, "topics": [], "count": 0})
        if topic:
            entry["topics"].append(topic)
        entry["count"] += count
    return web.json_response({"items": list(subjects.values())})


@routes.route(
    "GET",
    "/questions/template.xlsx",
    summary="The XLSX template for importing questions (Vietnamese headers, a guide, examples)",
    access=ADMIN_OR_TEACHER,
    produces=XLSX_TYPE,
)
async def question_template(request: web.Request) -> web.Response:
    data = await asyncio.to_thread(question_sheets.template_xlsx)
    return attachment(data, XLSX_TYPE, "mau-ngan-hang-cau-hoi.xlsx", "mẫu-ngân-hàng-câu-hỏi.xlsx")


@routes.route(
    "GET",
    "/questions/export.xlsx",
    summary="The questions the caller may use, as an XLSX in the template's columns",
    access=ADMIN_OR_TEACHER,
    produces=XLSX_TYPE,
    query=QuestionFilter,
)
async def export_questions(request: web.Request, query: QuestionFilter) -> web.Response:
    async with unit_of_work(request) as work:
        found = (await work.db.execute(_filtered(query, current_user(request)))).scalars().all()
    data = await asyncio.to_thread(question_sheets.export_xlsx, list(found))
    return attachment(data, XLSX_TYPE, "ngan-hang-cau-hoi.xlsx", "ngân-hàng-câu-hỏi.xlsx")


@routes.route(
    "POST",
    "/questions/import",
    summary="Import questions from an XLSX sent as the raw body: all of them, or none and every bad row listed",
    access=ADMIN_OR_TEACHER,
    response=ImportResult,
)
async def import_questions(request: web.Request) -> web.Response:
    user = current_user(request)
    too_large = ApiError(413, "file_too_large", "The file is larger than 2 MB. / Tệp lớn hơn 2 MB.")
    data = await _read_body(request, question_sheets.MAX_FILE_BYTES, too_large)
    try:
        parsed, problems = await asyncio.to_thread(question_sheets.parse_questions, data)
    except SheetFileError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    if problems:
        errors = [p.as_dict() for p in problems]
        lines = sorted({p.line for p in problems})
        first = "; ".join(f"line {p.line} ({p.column}): {p.reason}" for p in problems[:3])
        message = (
            f"Nothing was imported: {len(lines)} row(s) have problems (lines {', '.join(map(str, lines[:20]))}"
            f"{'…' if len(lines) > 20 else ''}). / Chưa nhập câu nào: {len(lines)} dòng có lỗi. {first}"
        )
        # The error shape (docs/api.md), and the import's own answer beside it: created 0, every problem.
        return web.json_response(
            {
                "error": {"code": "import_rejected", "message": message, "details": errors},
                "created": 0,
                "errors": errors,
            },
            status=400,
        )
    if not parsed:
        raise ApiError(
            400,
            "empty_import",
            "The sheet has no questions under its header. / Bảng tính chưa có câu hỏi nào dưới dòng tiêu đề.",
        )
    async with unit_of_work(request) as work:
        now = utcnow()
        work.db.add_all(
            [
                Question(
                    owner_id=user.id,
                    subject=row.subject,
                    topic=row.topic,
                    shared=row.shared,
                    created_at=now,
                    updated_at=now,
                    **row.fields,
                )
                for row in parsed
            ]
        )
        work.audit("questions_imported", count=len(parsed), subjects=sorted({row.subject for row in parsed}))
    return web.json_response({"created": len(parsed), "errors": []})


@routes.route(
    "POST",
    "/questions",
    summary="Add a question to the bank",
    access=ADMIN_OR_TEACHER,
    body=QuestionCreate,
    response=QuestionOut,
    status=201,
)
async def create_question(request: web.Request, body: QuestionCreate) -> web.Response:
    user = current_user(request)
    fields, subject, topic = _checked(body.model_dump(include=set(QUESTION_FIELDS)), body.subject, body.topic)
    async with unit_of_work(request) as work:
        question = Question(owner_id=user.id, subject=subject, topic=topic, shared=bool(body.shared), **fields)
        work.db.add(question)
        await work.db.flush()
        work.audit("question_created", target=f"question:{question.id}", subject=subject)
        await work.db.refresh(question, attribute_names=["owner"])
        return web.json_response(_out(request, question), status=201)


# -- one question ------------------------------------------------------------------------------------
@routes.route(
    "GET", "/questions/{question_id}", summary="One question of the bank", access=ADMIN_OR_TEACHER, response=QuestionOut
)
async def get_question(request: web.Request) -> web.Response:
    async with unit_of_work(request) as work:
        question = await _question(work.db, current_user(request), path_int(request, "question_id"))
        return web.json_response(_out(request, question))


@routes.route(
    "PATCH",
    "/questions/{question_id}",
    summary="Change a question (its author or an admin)",
    access=ADMIN_OR_TEACHER,
    body=QuestionUpdate,
    response=QuestionOut,
)
async def update_question(request: web.Request, body: QuestionUpdate) -> web.Response:
    user = current_user(request)
    changes = body.model_dump(exclude_unset=True, exclude={"image_url", "bank_id"})
    async with unit_of_work(request) as work:
        question = await _question(work.db, user, path_int(request, "question_id"), edit=True)
        merged = {name: getattr(question, name) for name in QUESTION_FIELDS}
        merged.update({k: v for k, v in changes.items() if k in QUESTION_FIELDS})
        for required in ("kind", "text"):
            if required in changes and changes[required] is None:
                raise ApiError(400, "invalid_request", f"{required} cannot be empty.")
        kind = changes.get("kind") or question.kind
        if kind != question.kind:
            # Another kind: what the old kind had does not carry over unless sent again (single and multiple
            # choice keep their options and correct letters).
            both_choice = {kind, question.kind} <= set(questions.CHOICE_KINDS)
            for name, keep in (("options", both_choice), ("correct", both_choice), ("tolerance", kind == "number")):
                if name not in changes and not keep:
                    merged[name] = [] if name == "options" else None
        fields, subject, topic = _checked(
            merged, changes.get("subject", question.subject), changes.get("topic", question.topic)
        )
        for name, value in fields.items():
            setattr(question, name, value)
        question.subject, question.topic = subject, topic
        if changes.get("shared") is not None:
            question.shared = changes["shared"]
        question.updated_at = utcnow()
        work.audit("question_updated", target=f"question:{question.id}", fields=sorted(changes))
        return web.json_response(_out(request, question))


@routes.route(
    "DELETE",
    "/questions/{question_id}",
    summary="Delete a question (its author or an admin)",
    access=ADMIN_OR_TEACHER,
    response=Ok,
)
async def delete_question(request: web.Request) -> web.Response:
    user = current_user(request)
    async with unit_of_work(request) as work:
        question = await _question(work.db, user, path_int(request, "question_id"), edit=True)
        image = question.image_sha256
        work.audit(
            "question_deleted", target=f"question:{question.id}", subject=question.subject, text=question.text[:200]
        )
        await work.db.delete(question)
        await work.commit()
        if image and not await _image_still_used(work.db, image):
            questions.remove_image_file(request.app[SETTINGS].files_dir, image)
    return web.json_response({"ok": True})


@routes.route(
    "PUT",
    "/questions/{question_id}/image",
    summary="Set the question's image (PNG, JPEG, WebP or GIF up to 1 MB, sent as the raw body)",
    access=ADMIN_OR_TEACHER,
    response=QuestionOut,
)
async def set_question_image(request: web.Request) -> web.Response:
    user = current_user(request)
    settings = request.app[SETTINGS]
    question_id = path_int(request, "question_id")
    async with unit_of_work(request) as work:
        await _question(work.db, user, question_id, edit=True)  # refused before the upload is read
    too_large = ApiError(413, "file_too_large", "The image is larger than 1 MB. / Hình ảnh lớn hơn 1 MB.")
    data = await _read_body(request, questions.IMAGE_MAX_BYTES, too_large)
    media_type = questions.check_image(data)
    digest = await asyncio.to_thread(questions.store_image, settings.files_dir, data)
    async with unit_of_work(request) as work:
        question = await _question(work.db, user, question_id, edit=True)
        before = question.image_sha256
        question.image_sha256, question.image_type = digest, media_type
        question.updated_at = utcnow()
        work.audit("question_image_set", target=f"question:{question.id}", sha256=digest, size=len(data))
        await work.commit()
        if before and before != digest and not await _image_still_used(work.db, before):
            questions.remove_image_file(settings.files_dir, before)
        return web.json_response(_out(request, question))


@routes.route(
    "DELETE",
    "/questions/{question_id}/image",
    summary="Remove the question's image",
    access=ADMIN_OR_TEACHER,
    response=QuestionOut,
)
async def remove_question_image(request: web.Request) -> web.Response:
    user = current_user(request)
    async with unit_of_work(request) as work:
        question = await _question(work.db, user, path_int(request, "question_id"), edit=True)
        before = question.image_sha256
        question.image_sha256 = question.image_type = None
        question.updated_at = utcnow()
        work.audit("question_image_removed", target=f"question:{question.id}")
        await work.commit()
        if before and not await _image_still_used(work.db, before):
            questions.remove_image_file(request.app[SETTINGS].files_dir, before)
        return web.json_response(_out(request, question))


@routes.route(
    "GET",
    "/question-images/{token}",
    summary="A question's image, through the signed link the bank gave (valid 24 h)",
    access=ANY_USER,
    produces="image/*",
)
async def question_image(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    link = questions.read_image_token(settings.secret_key, request.match_info["token"])
    async with unit_of_work(request) as work:
        question = await work.db.get(Question, link.question_id)
    if question is None or not question.image_sha256 or not question.image_sha256.startswith(link.sha256_prefix):
        raise ApiError(404, "not_found", "Image not found. / Không tìm thấy hình ảnh.")
    path = questions.images_dir(settings.files_dir) / question.image_sha256
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise ApiError(404, "not_found", "Image not found. / Không tìm thấy hình ảnh.") from None
    return web.Response(
        body=data,
        headers={
            "Content-Type": question.image_type or "application/octet-stream",
            "Cache-Control": "private, max-age=3600",
        },
    )


# The links the bank gives are /api/question-images/<token> (questions.IMAGE_URL_PREFIX, the room's question
# shape); app.py serves this route there too, beside /api/v1/question-images/<token>.
image_routes = RouteTable("question bank")
image_routes.routes = [r for r in routes.routes if r.handler is question_image]
