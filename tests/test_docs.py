"""The documented contract stays whole and in step with the code.

``docs/contract.md`` is what users and operators rely on: every topic, every
dead-letter reason of the error tree and every dead-letter header must be named
there, so a new one cannot ship undocumented.  And no tracked file may point at
a contract outside the repository, which a user could not read.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Literal

import pytest

from chimera import errors
from chimera.codec import decode_event
from chimera.events.deadletters import DeadLetter
from chimera.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "contract.md"

#: A document named the way this repository names its own (README.md, CHANGELOG.md).
_DOCUMENT = re.compile(r"\b[A-Z][A-Z0-9_-]*\.md\b")
#: A relative path that climbs out of its folder.
_CLIMBING = re.compile(r"(?<![\w./])\.\./[\w./-]+")


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    return [ROOT / name for name in listed.split("\0") if name]


def _dlq_reasons() -> set[str]:
    """The ``dlq_reason`` of every class in the error tree."""
    seen: set[str] = set()
    pending: list[type[errors.ChimeraError]] = [errors.ChimeraError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        reason = getattr(cls, "dlq_reason", None)
        if isinstance(reason, str):
            seen.add(reason)
    return seen


def _dead_letter_headers() -> set[str]:
    """Every header dead-lettering adds, ``x-dlq-omitted`` included."""
    letter = DeadLetter(
        key=b"k", value=b"v", reason="invalid_json", error_class="E", error_message="m"
    ).without_original()
    return {name for name, _ in letter.record_headers() if name.startswith("x-")}


@pytest.fixture(scope="module")
def contract() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def test_no_tracked_file_cites_a_document_outside_the_repository() -> None:
    """Every document a file names is in the repository, and no relative path in the
    docs leads out of it: a user has the repository, nothing beside it."""
    tracked = [p for p in _tracked_files() if p.is_file()]  # deleted ones: not yet staged
    documents = {p.name for p in tracked}
    citing = []
    for path in tracked:
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(ROOT)
        citing += [f"{where}: {n}" for n in set(_DOCUMENT.findall(text)) - documents]
        if path.suffix == ".md":
            for target in _CLIMBING.findall(text):
                if not (path.parent / target).resolve().is_relative_to(ROOT):
                    citing.append(f"{where}: {target}")
    assert citing == []


def test_contract_names_every_topic(contract: str) -> None:
    names = set(load_settings().topics)  # keyed by role: the default names
    assert len(names) == 8
    assert sorted(n for n in names if f"`{n}`" not in contract) == []


def test_contract_names_every_dead_letter_reason(contract: str) -> None:
    reasons = _dlq_reasons()
    assert {"invalid_json", "schema_invalid", "worker_lost"} <= reasons
    assert sorted(r for r in reasons if f"`{r}`" not in contract) == []


def test_contract_names_every_dead_letter_header(contract: str) -> None:
    headers = _dead_letter_headers()
    assert {"x-dlq-reason", "x-failed-at", "x-dlq-omitted"} <= headers
    assert sorted(h for h in headers if f"`{h}`" not in contract) == []


def _examples(contract: str, heading: str) -> list[dict[str, Any]]:
    """The JSON examples under the ``### heading`` section of the contract."""
    section = contract.split(f"### {heading}", 1)[1].split("\n### ", 1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.S)]


@pytest.mark.parametrize(
    ("heading", "kind"),
    [("`conversation.new`", "conversation"), ("`analysis.tasks`", "analysis")],
)
def test_the_input_examples_are_accepted_as_they_stand(
    contract: str, heading: str, kind: Literal["conversation", "analysis"]
) -> None:
    """An event copied from the contract is one the bridge accepts with the defaults."""
    examples = _examples(contract, heading)
    assert examples
    for example in examples:
        event, _ = decode_event(json.dumps(example), kind, load_settings())
        assert event.event_id == example["event_id"]
