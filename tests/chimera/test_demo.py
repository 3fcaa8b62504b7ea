"""`chimera demo` end to end on a stack of its own, and when it cannot start."""

from __future__ import annotations

import json
from pathlib import Path

from chimera.demo import load_samples
from tests.chimera.test_cli import chimera
from tests.chimera.test_stack import recorded_pids
from tests.chimera.test_stack import stack_env as stack_env  # noqa: PLC0414 - a fixture
from tests.helpers import free_port


def test_the_demo_runs_sample_work_through_kafka_and_shows_the_results(
    stack_env: dict[str, str],
) -> None:
    env = stack_env | {"CHIMERA_FLOWER_PORT": str(free_port())}
    result = chimera("demo", "--timeout", "200", env=env, timeout=420)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    topics, texts = load_samples()
    assert "the built-in simulator stands in" in out
    assert f"submitted {len(topics)} conversations" in out
    assert f"{len(topics)}/{len(topics)} conversations" in out
    assert f"analyses {len(texts) + 1}/{len(texts) + 1}" in out
    table = out.split("== conversations ==")[1].split("==")[0].strip().splitlines()
    assert len(table) == 1 + len(topics) and all(row.endswith("completed") for row in table[1:])
    accepted = sum(1 for row in table[1:] if "  accepted  " in row)
    rejected = sum(1 for row in table[1:] if "  rejected: " in row)
    assert accepted + rejected == len(topics) and accepted > 0
    transcript = out.split("== transcript of")[1].split("\n==")[0]
    assert "[0] Claude (claude-sonnet-5-5):" in transcript and "[1] Gemini" in transcript
    assert "statuses: summary ok, argument ok" in out
    exported = Path(out.split("(OpenAI messages JSONL) to ")[1].split(" (")[0])
    assert f"({rejected} rejected, not exported)" in out
    if not exported.is_absolute():
        exported = Path(__file__).resolve().parents[2] / exported
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert len(lines) == accepted
    assert all(json.loads(line)["messages"] for line in lines)
    assert f"http://127.0.0.1:{env['CHIMERA_HTTP_PORT']}/metrics" in out
    assert recorded_pids(Path(env["CHIMERA_STATE_DIR"])) == {}  # the stack was stopped


def test_the_demo_says_what_is_missing_when_redis_is_away(stack_env: dict[str, str]) -> None:
    result = chimera("demo", env=stack_env | {"REDIS_PORT": str(free_port())}, timeout=120)
    assert result.returncode != 0
    assert "Redis" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    assert recorded_pids(Path(stack_env["CHIMERA_STATE_DIR"])) == {}


def test_the_samples_are_valid_events() -> None:
    from chimera.models import AnalysisTask, ConversationRequest

    topics, texts = load_samples()
    assert len(topics) >= 5 and len(texts) >= 2
    for i, topic in enumerate(topics):
        ConversationRequest.model_validate({"event_id": f"t{i}", "topic": topic})
    for i, item in enumerate(texts):
        AnalysisTask.model_validate({"event_id": f"a{i}"} | item)
