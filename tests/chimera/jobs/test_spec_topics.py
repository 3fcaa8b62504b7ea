"""The job spec and topic files: what is accepted, what is refused and how it is named."""

from __future__ import annotations

import inspect
import io
from pathlib import Path
from typing import Any

import pytest

from chimera.codec import limits_from
from chimera.errors import SchemaInvalid
from chimera.events.ids import job_event_id, job_id, job_of_event
from chimera.jobs.spec import canonical, parse_spec
from chimera.jobs.topics import read_topics, spool


def test_a_spec_takes_the_configured_defaults(settings: Any) -> None:
    spec = parse_spec({"name": "cars"}, limits_from(settings))
    assert len(spec.participants) == 2 and spec.target is None and spec.priority == 0
    assert 1 <= spec.min_turns <= spec.max_turns


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({}, "name"),
        ({"name": " "}, "name"),
        ({"name": "x", "participants": [{"provider": "anthropic", "model": "no-such"}] * 2},
         "participants.0.model"),
        ({"name": "x", "min_turns": 5, "max_turns": 3}, "min_turns"),
        ({"name": "x", "max_turns": True}, "max_turns"),
        ({"name": "x", "target": 0}, "target"),
        ({"name": "x", "budget_usd": -1}, "budget_usd"),
        ({"name": "x", "min_quality": 1.5}, "min_quality"),
        ({"name": "x", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_bad_specs_are_refused_naming_the_field(settings: Any, obj: Any, field: str) -> None:
    with pytest.raises(SchemaInvalid) as caught:
        parse_spec(obj, limits_from(settings))
    assert field in [e["field"] for e in caught.value.errors]


def test_the_three_formats(tmp_path: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text(
        '{"title": "Cars", "id": "t-1", "lang": "en"}\n\n{"title": "Bikes", "description": "d"}\n'
    )
    csv_file = tmp_path / "t.csv"
    csv_file.write_text('title,id,lang\nCars,t-1,en\n"Bikes, fast",,\n')
    lines = tmp_path / "t"
    lines.write_text("Cars\n  \nBikes\n")
    assert list(read_topics(jsonl)) == [
        {"id": "t-1", "title": "Cars", "metadata": {"lang": "en"}},
        {"title": "Bikes", "description": "d"},
    ]
    assert list(read_topics(csv_file)) == [
        {"id": "t-1", "title": "Cars", "metadata": {"lang": "en"}},
        {"title": "Bikes, fast"},
    ]
    assert list(read_topics(lines)) == [{"title": "Cars"}, {"title": "Bikes"}]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("t.jsonl", '{"title": "ok"}\n{"title": \n', "t.jsonl line 2: not JSON"),
        ("t.jsonl", '{"title": "ok"}\n\n[1]\n', "t.jsonl line 3: expected a JSON object"),
        ("t.jsonl", '{"title": ""}\n', "t.jsonl line 1: title"),
        ("t.csv", "name\nCars\n", "t.csv line 1: a CSV topics file needs a 'title' column"),
        ("t.csv", 'title\nCars\n""\n', "t.csv line 3: title"),
    ],
)
def test_a_bad_line_is_named(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SchemaInvalid) as caught:
        list(read_topics(path, name=name))
    assert str(caught.value).startswith(message)


def test_stdin_is_spooled_to_a_file(tmp_path: Path) -> None:
    path = spool(io.BytesIO(b"Cars\nBikes\n"), directory=str(tmp_path))
    try:
        assert list(read_topics(path, "lines")) == [{"title": "Cars"}, {"title": "Bikes"}]
    finally:
        path.unlink()


def test_a_large_file_is_read_lazily(tmp_path: Path) -> None:
    """100,000 lines: the reader is a generator that reads as it is consumed."""
    path = tmp_path / "big.jsonl"
    with path.open("w") as f:
        for i in range(100_000):
            f.write(f'{{"title": "topic {i}"}}\n')
    # A broken last line: a reader that parsed everything up front would fail at once.
    with path.open("a") as f:
        f.write("{broken\n")
    topics = read_topics(path)
    assert inspect.isgenerator(topics)
    assert next(topics) == {"title": "topic 0"}
    assert next(topics) == {"title": "topic 1"}
    count = 2
    with pytest.raises(SchemaInvalid, match="line 100001"):
        for _ in topics:
            count += 1
    assert count == 100_000


def test_job_and_event_ids_are_derived() -> None:
    spec = {"name": "x", "max_turns": 2}
    topics = [canonical({"title": "Cars"}), canonical({"title": "Bikes"})]
    a = job_id(spec, iter(topics))
    assert a == job_id(dict(reversed(spec.items())), iter(topics))
    assert a != job_id(spec, iter(topics[:1])) != job_id(spec | {"max_turns": 3}, iter(topics))
    assert job_of_event(job_event_id(a, 7)) == a
    assert job_of_event("evt-1") is None and job_of_event(f"{a}:cx") is None
