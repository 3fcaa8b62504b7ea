"""Hostile text costs time in proportion to its length, and no more.

Every path that reads text an event's author (or a file's) chose is fed the shapes that
make a pattern backtrack or a loop read again what it has read: long runs of one
character, ``key=`` or ``a://b:`` repeated, ``a.`` a megabyte long, nesting a thousand
deep, single tokens of a megabyte, unpaired surrogates.  Each is read at a size n and at
4n, and the larger must cost about 4 times the CPU, not the 16 times of a quadratic path
(``tests/linear.py``; the ones these replaced needed minutes or hours for a megabyte: the
credential masking took 2 s for 32,000 characters of ``a.``, the ending detector 4 minutes
for 80,000 spaces).  What comes out of the larger is checked too: credentials are still
masked, errors still name the field at fault and quote it short, and ``chimera score``
reports a bad line and scores the rest.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from chimera import defaults as d
from chimera.cli.data import score_command
from chimera.codec import LISTED_ERRORS, parse_json_object, validate_event
from chimera.conversation.ending import EndDecision, ending_of, is_closing
from chimera.conversation.quality import QualityReport, score_conversation
from chimera.conversation.text import sentences
from chimera.errors import InputError, InvalidJSON, SchemaInvalid, UndecodableEvent
from chimera.models import AnalysisTask, ConversationRequest
from chimera.models.transcript import TranscriptTurn
from chimera.redaction import MASK, Redactor
from chimera.settings import Settings
from chimera.untrusted import quote_limit
from tests.linear import assert_linear

MIB = 1 << 20
#: Where n starts growing (until a run takes a measurable CPU time).
START = 1 << 16
MARK = "7f3a9c"
SECRET = f"sk-{MARK}-Zq9"
#: A new number in each input: no run reuses what a cache kept from an earlier one.
SALT = itertools.count()


def fill(unit: str, size: int) -> str:
    """``unit`` repeated to about ``size`` characters."""
    return unit * (size // len(unit))


# --- credential masking ------------------------------------------------------------------------

#: n characters each, shaped against one alternative of the credential patterns.
MASKING_SHAPES: dict[str, Callable[[int], str]] = {
    "a. repeated": lambda n: "key " + fill("a.", n),
    "a- repeated": lambda n: "key " + fill("a-", n),
    "a+ repeated": lambda n: "key " + fill("a+", n),
    "a://b: repeated": lambda n: fill("a://b:", n),
    "a:// then colons": lambda n: "a://" + ":" * n,
    "a://b: then a long password": lambda n: "a://b:" + "c" * n,
    "key= repeated": lambda n: fill("key=", n),
    "?key= repeated": lambda n: fill("?key=", n),
    "x-api-key: repeated": lambda n: fill("x-api-key:", n),
    "authorization then spaces": lambda n: "authorization" + " " * n + "x",
    "bearer repeated": lambda n: fill("bearer ", n),
    "bearer and a long token": lambda n: "bearer " + "Ab" * (n // 2),
    "one long word": lambda n: "token " + "x" * n,
    "a run of spaces": lambda n: "pass" + " " * n + "x",
}


@pytest.mark.parametrize("shape", MASKING_SHAPES)
def test_masking_text_shaped_against_it_is_linear(shape: str) -> None:
    def prepare(n: int) -> Callable[[], str]:
        redactor = Redactor([SECRET])
        text = f"{MASKING_SHAPES[shape](n)} {SECRET} password=pw-{MARK}"
        return lambda: redactor.redact(text)

    out = assert_linear(shape, prepare, start=START, largest=4 * MIB)
    assert MARK not in out
    assert out.endswith(f"{MASK} password={MASK}")


#: Pieces of hostile text: the start of every credential shape, and separators.
PIECES = [
    "a.", "a-", "a://", "b:", "@", "/", "key", "key=", "?key=", "&", "x-api-key", ":", "=",
    "authorization", "bearer", "basic", " ", "\n", "token", "password", '"', "'", "A", "1",
]  # fmt: skip
HOSTILE = st.lists(st.tuples(st.sampled_from(PIECES), st.integers(1, 400)), max_size=12).map(
    lambda runs: "".join(piece * times for piece, times in runs)
)
CREDENTIALS = [
    "postgresql+psycopg2://app:{}@db:5432/x",
    "https://user:{}@proxy:8080/v1",
    "Authorization: Bearer {}",
    "{{'x-api-key': '{}'}}",
    "x-goog-api-key: {}",
    "GET /v1beta/models/m:generateContent?key={}&alt=sse",
    "host=db password={} user=app",
    "sent Bearer {}",
]


@given(
    before=HOSTILE,
    after=HOSTILE,
    credential=st.sampled_from(CREDENTIALS),
    secret=st.from_regex(r"[A-Za-z0-9]{2,12}", fullmatch=True).map(lambda s: f"{s}{MARK}"),
)
def test_a_credential_in_hostile_text_is_still_masked(
    before: str, after: str, credential: str, secret: str
) -> None:
    # "; " ends whatever shape the hostile text started, as any real separator would.
    text = f"{before}; {credential.format(secret)} {after}"
    assert MARK not in Redactor().redact(text)


#: Secrets of characters that neither the filler nor the shapes around them hold.
CUT_SECRETS = ["QZ7f3X9cQZ", "QZ7f3 X9cQZ"]
FILLER = st.text(alphabet="bdeghijklmnoprstuvwxy -:/=\n", max_size=600)


@given(
    head=FILLER,
    tail=FILLER,
    secret=st.sampled_from(CUT_SECRETS),
    limit=st.integers(1, 700),
    shape=st.sampled_from(["{}", "password={}", "Authorization: Bearer {}", "u://v:{}@w"]),
)
def test_a_message_cut_to_its_bound_keeps_no_fragment_of_a_secret(
    head: str, tail: str, secret: str, limit: int, shape: str
) -> None:
    text = head + shape.format(secret) + tail
    out = Redactor([secret]).redact_clipped(text, limit)
    body = re.sub(r"…\[\d+ more chars\]$", "", out)
    assert len(body) <= limit
    assert not set(body) & set(secret.replace(" ", "")), out  # no character of it is left


def test_a_log_line_is_cut_to_its_bound_before_it_is_masked(
    settings: Settings,
    service_logs: Callable[[Settings], Callable[[], str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bounded = settings.model_copy(
        update={"max_log_message_chars": 1_000, "kafka_sasl_password": SecretStr(SECRET)}
    )
    logged = service_logs(bounded)
    log = logging.getLogger("chimera.test.linear_time")

    def prepare(n: int) -> Callable[[], None]:
        text = "key " + fill("a.", n)
        return lambda: log.warning("rejected %s", text)

    assert_linear("a log line", prepare, start=START, largest=4 * MIB)
    logged()
    caplog.clear()  # what the measuring logged; the lines below are read on their own
    log.warning("rejected %s", "key " + fill("a.", 4 * MIB))
    # The known secret straddles the bound: the cut must not leave its first half.
    log.warning("%s%s and more", "x " * 495, SECRET)
    try:
        raise ValueError("the traceback is kept whole: " + "t" * 5_000)
    except ValueError:
        log.exception("failed on %s", "y" * MIB)
    text = logged()
    assert MARK not in text and "sk-" not in text
    assert "rejected key …[" in text  # the cut falls before the word it would split
    assert "x x …[" in text
    assert len(text) < 30_000  # three messages of at most 1,000 characters, two handlers
    assert "ValueError: the traceback is kept whole: " + "t" * 5_000 in text


# --- the codec --------------------------------------------------------------------------------

OK_EVENT = {"event_id": "evt-1", "topic": "Should cities ban cars?"}


def _deep(n: int) -> str:
    """Nesting just under the depth limit, keys n/100 long, a lone surrogate at the bottom."""
    return "".join(f'{{"{c}":' for c in ("k" * (n // 100),) * 99) + '"\\ud800"' + "}" * 99


#: name: (a body of at most n bytes, the error it must raise, what its message names).
EVENTS: dict[str, tuple[Callable[[int], bytes], type[InputError], str]] = {
    "a long key over a long list": (
        lambda n: json.dumps({**OK_EVENT, "k" * (n // 2): [0] * (n // 11)}).encode(),
        SchemaInvalid,
        "kkkk",
    ),
    "many unknown keys": (
        lambda n: json.dumps({**OK_EVENT, **{f"k{i}": 0 for i in range(n // 13)}}).encode(),
        SchemaInvalid,
        "k0: Extra inputs are not permitted",
    ),
    "a long event id": (
        lambda n: json.dumps({**OK_EVENT, "event_id": "e" * (n - 100)}).encode(),
        SchemaInvalid,
        "event_id",
    ),
    "brackets": (lambda n: b"[" * (n // 2) + b"]" * (n // 2), InvalidJSON, "nested"),
    "nesting under the depth limit, long keys and a surrogate": (
        lambda n: _deep(n).encode(),
        UndecodableEvent,
        "unpaired surrogate",
    ),
    "key= as a topic": (
        lambda n: json.dumps({**OK_EVENT, "topic": fill("key=", n - 200)}).encode(),
        SchemaInvalid,
        "topic",
    ),
    "a.a.a. as a key": (
        lambda n: json.dumps({**OK_EVENT, "key " + fill("a.", n - 200): 1}).encode(),
        SchemaInvalid,
        "key a.a.a.",
    ),
}


@pytest.mark.parametrize("event", EVENTS)
def test_the_codec_refuses_a_costly_event_in_linear_time_and_quotes_it_short(event: str) -> None:
    build, error, names = EVENTS[event]

    def prepare(n: int) -> Callable[[], InputError]:
        raw = build(n)
        assert len(raw) <= n

        def run() -> InputError:
            with pytest.raises(error) as info:
                obj = parse_json_object(raw, max_bytes=d.MAX_EVENT_BYTES)
                validate_event(ConversationRequest, obj)
            return info.value

        return run

    # The larger event is as long as an event may be.
    refused = assert_linear(event, prepare, start=START, largest=d.MAX_EVENT_BYTES)
    message = str(refused)
    assert names in message
    # Each listed error quotes a field and a message at most the quote bound long.
    assert len(message) < LISTED_ERRORS * 2 * (quote_limit() + 40) + 500
    if isinstance(refused, SchemaInvalid):
        fields = [e["field"] for e in refused.errors]
        assert fields and all(len(f) < quote_limit() + 40 for f in fields)


def test_every_unknown_key_is_listed_in_the_errors_and_the_message_counts_the_rest() -> None:
    obj = {"event_id": "evt-1", "context_id": "doc-1", **{f"extra{i}": i for i in range(50)}}
    with pytest.raises(SchemaInvalid) as info:
        validate_event(AnalysisTask, obj)
    assert [e["field"] for e in info.value.errors] == [f"extra{i}" for i in range(50)]
    assert f"extra{LISTED_ERRORS - 1}: " in info.value.message
    assert f"extra{LISTED_ERRORS}: " not in info.value.message
    assert info.value.message.endswith(f"; and {50 - LISTED_ERRORS} more")


# --- the ending and quality detectors ---------------------------------------------------------

#: n characters each (the detectors once needed minutes for 80,000 spaces).
TURN_SHAPES: dict[str, Callable[[int], str]] = {
    "a run of spaces": lambda n: "So" + " " * n + "then.",
    "a run of line breaks and spaces": lambda n: fill(" \n", n),
    "thanks, endlessly": lambda n: fill("thanks ", n),
    "thanks, endlessly, then a question": lambda n: fill("thanks for the chat ", n) + "why?",
    "agreement without a full stop": lambda n: fill("i agree but not ", n),
    "one sentence of cues": lambda n: fill("great point, good discussion, take care ", n),
    "a. repeated": lambda n: fill("a.", n),
    "one token": lambda n: "x" * n,
    "distinct words": lambda n: " ".join(f"w{i}" for i in range(n // 7)),
    "negations and pivots": lambda n: fill("not but however thanks ", n) + "?",
}


def _turns(texts: list[str]) -> list[TranscriptTurn]:
    speakers = [("ana", "anthropic"), ("ben", "google")]
    return [
        TranscriptTurn(
            turn_index=i,
            speaker=speakers[i % 2][0],
            provider=speakers[i % 2][1],  # type: ignore[arg-type]
            model="m",
            content=text,
        )
        for i, text in enumerate(texts)
    ]


@pytest.mark.parametrize("shape", TURN_SHAPES)
def test_the_detectors_read_a_hostile_turn_in_linear_time(shape: str) -> None:
    goodbye = "Thanks for the conversation, take care!"

    def prepare(n: int) -> Callable[[], tuple[EndDecision | None, QualityReport]]:
        # The salt keeps the detectors' caches (keyed on the text) from serving a repeat.
        text = f"{next(SALT)} {TURN_SHAPES[shape](n)}"
        turns = _turns(["Should cities ban cars? I think so.", text, text[::-1], goodbye])

        def run() -> tuple[EndDecision | None, QualityReport]:
            ended = ending_of(turns)
            report = score_conversation(turns, ended_reason=ended.reason if ended else None)
            sentences(text)
            is_closing(text, after_close=True)
            return ended, report

        return run

    ended, report = assert_linear(shape, prepare, start=START, largest=MIB)
    assert ended is not None and ended.reason == "natural_close"  # the goodbye still counts
    assert 0 <= report.score <= 1


def test_a_closing_question_still_counts_its_own_cue_among_many() -> None:
    # Hundreds of distinct cues before it: a question holding one is still no question.
    many = ", ".join(f"thanks {i} for the chat" for i in range(300))
    assert is_closing(f"{many}. Shall we call it a day?")
    assert not is_closing(f"{many}. What about buses?")


# --- chimera score --------------------------------------------------------------------------


def _conversation(content: str, *, turns: int = 2, **extra: Any) -> str:
    messages = [
        {"role": "user", "content": "Should cities ban cars? What do you think?"},
        *({"role": ("assistant", "user")[i % 2], "content": content} for i in range(turns - 1)),
    ]
    return json.dumps({"messages": messages, **extra})


def _score_lines(n: int) -> list[tuple[str, str | None]]:
    """(line, the error it must be reported with; None: it is scored), two lines n long."""
    salt = next(SALT)  # a line of its own in each run: no cache serves a repeat
    return [
        (_conversation(f"Cars make cities loud, and I would ban them downtown ({salt})."), None),
        ('{"messages": ' + "[" * 1_000 + "]" * 1_000 + "}", "invalid JSON: nested too deeply"),
        (_conversation(f"{salt} " + "x" * n), None),
        (_conversation("a lone \ud800 surrogate"), "unpaired surrogate"),
        (_conversation("fine", id="\udfff"), "unpaired surrogate"),
        (_conversation(f"{salt} So" + " " * (n // 4) + "then."), None),
        (_conversation(f"{salt} " + fill("thanks ", n // 4)), None),
        ('{"messages": [], "n": ' + "9" * 5_000 + "}", "a number has too many digits"),
        (
            json.dumps({"messages": [{"role": "r" * n, "content": "x"}]}),
            "has an unknown role 'rrrr",
        ),
        (  # longer than its max_turns, which no float holds
            _conversation(
                "Fine.", turns=12, id="evil\x1b[2J\u202eid", metadata={"max_turns": 10**400}
            ),
            None,
        ),
        (_conversation("Buses are the answer, and I will take care. Goodbye!"), None),
    ]


def test_score_reads_a_hostile_file_line_by_line(tmp_path: Path) -> None:
    files = itertools.count()

    def prepare(n: int) -> Callable[[], tuple[list[tuple[str, str | None]], Result]]:
        lines = _score_lines(n)
        source = tmp_path / f"hostile-{next(files)}.jsonl"
        source.write_text("\n".join(line for line, _ in lines) + "\n", encoding="utf-8")
        return lambda: (lines, CliRunner().invoke(score_command, ["--in", str(source)]))

    # Two lines of a megabyte in the larger file.
    score_lines, result = assert_linear("chimera score", prepare, start=START, largest=MIB)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    scored = [line.split("\t") for line in result.stdout.splitlines()]
    expected = [str(n) for n, (_, error) in enumerate(score_lines, 1) if error is None]
    assert [row[0] for row in scored] == expected
    assert all(0 <= float(row[1]) <= 1 for row in scored)
    assert scored[-2][-1] == "evil\\x1b[2J\\u202eid"  # the file's id, harmless to a terminal
    errors = result.stderr.splitlines()
    bad = [(n, error) for n, (_, error) in enumerate(score_lines, 1) if error is not None]
    assert len(errors) == len(bad) + 1
    for line, (n, error) in zip(errors, bad, strict=False):
        assert line.startswith(f"line {n}: ") and error in line, line
        assert len(line) < quote_limit() + 100
    assert errors[-1].endswith(f"; {len(bad)} malformed lines")
