"""Readiness checks: bounded in time, never raising, never leaking a secret."""

from __future__ import annotations

import threading

from pydantic import SecretStr

from chimera.errors import RedisUnavailable
from chimera.readiness import run_checks
from chimera.redaction import redact
from chimera.settings import Settings
from tests.helpers import wait_for


def test_checks_run_in_parallel_and_a_slow_one_times_out() -> None:
    release = threading.Event()
    entered: list[str] = []

    def slow() -> str:
        entered.append("slow")
        release.wait(60)
        return "late"

    def fast() -> str:
        return "fine"

    try:
        report = run_checks({"slow": slow, "slow2": slow, "fast": fast}, timeout_s=1.0)
        # Both slow checks are held until released: run one after the other, the second
        # could not have begun.
        wait_for(lambda: len(entered) == 2, what="both slow checks to run at once")
    finally:
        release.set()
    assert not report.ready
    assert report.failing == ["slow", "slow2"]
    as_dict = report.as_dict()
    assert as_dict["status"] == "not_ready"
    assert as_dict["checks"]["slow"] == {
        "ok": False,
        "latency_ms": 1000.0,
        "error": "no answer within 1s",
    }
    assert as_dict["checks"]["fast"]["ok"] is True
    assert as_dict["checks"]["fast"]["detail"] == "fine"


def test_a_failing_check_reports_its_error_and_an_unexpected_one_does_not_raise() -> None:
    def down() -> str:
        raise RedisUnavailable("Redis at 127.0.0.1:1 does not answer")

    def bug() -> str:
        raise KeyError("oops")

    report = run_checks({"redis": down, "bug": bug}, timeout_s=1.0)
    checks = report.as_dict()["checks"]
    assert checks["redis"]["error"] == "Redis at 127.0.0.1:1 does not answer"
    assert checks["bug"]["error"] == "KeyError: 'oops'"


def test_reports_are_scrubbed_of_secrets(settings: Settings) -> None:
    secret = settings.model_copy(
        update={
            "redis_password": SecretStr("r3dis-pw"),
            "openai_api_key": SecretStr("sk-live-123456"),
            "database_url": SecretStr("postgresql+psycopg2://u:db-pw-77@h:5432/x"),
        }
    )
    message = (
        "auth failed with r3dis-pw; key sk-live-123456; "
        "url postgresql+psycopg2://u:db-pw-77@h:5432/x; password db-pw-77; "
        "other amqp://guest:guest-pw@broker/"
    )
    out = redact(message, secret)
    for leaked in ("r3dis-pw", "sk-live-123456", "db-pw-77", "guest-pw"):
        assert leaked not in out
    assert "postgresql+psycopg2://u:***@h:5432/x" in out
    assert "amqp://guest:***@broker/" in out

    report = run_checks(
        {"x": lambda: "uses sk-live-123456"}, timeout_s=1.0, scrub=lambda s: redact(s, secret)
    )
    assert report.as_dict()["checks"]["x"]["detail"] == "uses ***"
