"""``POST /jobs``, ``GET /jobs``, ``GET /jobs/<id>``: datasets of a chosen size.

The body of ``POST /jobs`` is the spec of ``chimera jobs create`` as JSON, its topics
inline (``topics``: a list of topic objects or titles); the job's conversations go
through Kafka like every other (``conversation.new``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from werkzeug.exceptions import UnsupportedMediaType

from chimera.codec import parse_json_object
from chimera.errors import NotFound, SchemaInvalid
from chimera.jobs.repository import JobRepository
from chimera.jobs.service import create_job, inline_topics
from chimera.kafka.clients import make_producer
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
    producer = make_producer(settings)
    try:
        made = create_job(JobRepository(resources().engine), producer, settings, body, topics)
    finally:
        producer.close(timeout=5)
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
