"""`chimera jobs update|pause|resume|drain|cancel` on the real services."""

from __future__ import annotations

import json
from typing import Any

from chimera.jobs.repository import JobRepository
from chimera.settings import Settings, to_env
from tests.chimera.test_cli import chimera


def test_cli_controls_and_update(kafka_topics: Settings, db: Any) -> None:
    repo = JobRepository(db)
    spec = {"name": "cli", "participants": [], "min_turns": 1, "max_turns": 2}
    assert repo.create("job-cli-control", spec, [{"title": "Cars"}], 1)
    env = to_env(kafka_topics)

    def run(*args: str) -> Any:
        return chimera("jobs", *args, env=env)

    paused = run("pause", "job-cli-control")
    assert paused.returncode == 0, paused.stderr
    assert "job-cli-control: paused" in paused.stdout
    refused = run("pause", "job-cli-control")
    assert refused.returncode == 3 and "cannot pause a job that is paused" in refused.stderr
    assert run("resume", "job-cli-control").returncode == 0
    updated = run("update", "job-cli-control", "--budget", "2.5")
    assert updated.returncode == 0, updated.stderr
    assert "running (budget_usd 2.5)" in updated.stdout
    assert run("update", "job-cli-control", "--budget", "-1").returncode == 2
    assert run("drain", "job-cli-control").returncode == 0
    assert run("cancel", "job-cli-control").returncode == 0
    assert run("resume", "job-cli-control").returncode == 3
    missing = run("cancel", "job-none")
    assert missing.returncode == 1 and "no such job: job-none" in missing.stderr
    status = json.loads(run("status", "job-cli-control", "--json").stdout)
    assert status["status"] == "cancelled" and status["spec"]["budget_usd"] == 2.5
