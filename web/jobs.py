"""``POST /jobs``, ``GET /jobs``, ``GET /jobs/<id>``, ``PATCH /jobs/<id>`` (its budget),
``POST /jobs/<id>/{pause,resume,drain,cancel}``: datasets of a chosen size.

The body of ``POST /jobs`` is the spec of ``chimera jobs create`` as JSON, its topics
inline (``topics``: a list of topic objects or titles); the job's conversations go
through Kafka like every other (``conversation.new``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from chimera.codec import parse_json_object
from chimera.errors import NotFound, SchemaInvalid
from chimera.jobs.control import CONTROLS, JobControl
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import (
    Wake,
    control_job,
    create_job,
    feeder_wake,
    inline_topics,
    update_budget,
)
from chimera.redis_client import make_redis
from chimera.settings import Settings
from web.reads import _checked_id
from web.resources import resources

bp = Blueprint("jobs", __name__)


@bp.post("/jobs")
def create() -> tuple[dict[str, Any], int]:
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    settings: Settings = current_app.config["CHIMERA_SETTINGS"]
    # Topics are inline: the body may be as large as any (CHIMERA_HTTP_MAX_BODY_BYTES).
    body = parse_json_object(request.get_data(cache=False), max_bytes=settings.http_max_body_bytes)
    if "topics" not in body:
        raise SchemaInvalid(
            "topics: field required", [{"field": "topics", "message": "Field required"}]
        )
    topics = inline_topics(body.pop("topics"))
    res = resources()
    made = create_job(JobRepository(res.engine), res.producer.get(), settings, body, topics)
    return made.job.as_dict() | {"created": made.created}, 201 if made.created else 200


@bp.get("/jobs")
def listing() -> dict[str, Any]:
    try:
        limit = int(request.args.get("limit", "100"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise SchemaInvalid(
            "invalid limit", [{"field": "limit", "message": "expected an integer 1-1000"}]
        )
    jobs = JobRepository(resources().engine).list_jobs(limit=limit)
    return {"jobs": [j.as_dict() for j in jobs]}


@bp.get("/jobs/<job_id>")
def one(job_id: str) -> dict[str, Any]:
    jid = _checked_id(job_id, "job_id")
    job = JobRepository(resources().engine).get(jid)
    if job is None:
        raise NotFound("no such job", job_id=jid)
    return job.as_dict()


@bp.patch("/jobs/<job_id>")
def update(job_id: str) -> dict[str, Any]:
    """``{"budget_usd": N}``: a new budget (a job out of budget with room again runs, fed
    at once)."""
    jid = _checked_id(job_id, "job_id")
    if not request.is_json:
        raise UnsupportedMediaType("send the body as application/json")
    settings: Settings = current_app.config["CHIMERA_SETTINGS"]
    body = parse_json_object(request.get_data(cache=False), max_bytes=settings.http_max_body_bytes)
    unknown = sorted(set(body) - {"budget_usd"})
    if unknown or "budget_usd" not in body:
        field = unknown[0] if unknown else "budget_usd"
        message = "not a field that can be updated" if unknown else "Field required"
        raise SchemaInvalid(f"{field}: {message}", [{"field": field, "message": message}])
    with _control(settings) as control:
        job = update_budget(
            JobRepository(resources().engine), control, jid, body["budget_usd"], _wake(settings)
        )
    return job.as_dict()


@bp.post("/jobs/<job_id>/<action>")
def control(job_id: str, action: str) -> dict[str, Any]:
    """Pause, resume, drain or cancel a job (409 naming its status if not allowed); one
    whose parked conversations go on is fed at once."""
    if action not in CONTROLS:
        raise NotFound(f"no such job control: {action[:40]!r} (one of {', '.join(CONTROLS)})")
    jid = _checked_id(job_id, "job_id")
    settings: Settings = current_app.config["CHIMERA_SETTINGS"]
    with _control(settings) as ctl:
        job = control_job(JobRepository(resources().engine), ctl, jid, action, _wake(settings))
    return job.as_dict()


def _wake(settings: Settings) -> Wake:
    return feeder_wake(resources().celery, settings)


@contextlib.contextmanager
def _control(settings: Settings) -> Iterator[JobControl]:
    repo = JobRepository(resources().engine)
    client = make_redis(settings)
    try:
        yield JobControl(client, settings, repo.control_row)
    finally:
        client.close()
