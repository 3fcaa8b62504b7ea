"""Hostile text costs time in proportion to its length, and no more.

Every path that reads text an event's author (or a file's) chose is fed the shapes that
make a pattern backtrack or a loop read again what it has read: long runs of one
character, ``key=`` or ``a://b:`` repeated, ``a.`` a megabyte long, nesting a thousand
deep, single tokens of a megabyte, unpaired surrogates.  Each must finish within
``BOUND_S``, which no linear implementation comes near and the ones these replaced
needed minutes or hours for (the credential masking took 2 s for 32,000 characters of
``a.``; the ending detector 4 minutes for 80,000 spaces).  What comes out is checked
too: credentials are still masked, errors still name the field at fault and quote it
short, and ``chimera score`` reports a bad line and scores the rest.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from chimera import defaults as d
from chimera.cli.data import score_command
from chimera.codec import LISTED_ERRORS, parse_json_object, validate_event
from chimera.conversation.ending import ending_of, is_closing
from chimera.conversation.quality import score_conversation
from chimera.conversation.text import sentences
from chimera.errors import InputError, InvalidJSON, SchemaInvalid, UndecodableEvent
from chimera.models import AnalysisTask, ConversationRequest
from chimera.models.transcript import TranscriptTurn
from chimera.redaction import MASK, Redactor
from chimera.settings import Settings
from chimera.untrusted import quote_limit

#: Seconds any one input below may take: generous for linear code on a loaded machine,
#: and a small fraction of what a quadratic path needs for the same input.
BOUND_S = 5.0
MIB = 1 << 20
MARK = "7f3a9c"
SECRET = f"sk-{MARK}-Zq9"


@contextmanager
def within(seconds: float = BOUND_S) -> Iterator[None]:
    started = time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    assert elapsed < seconds, f"took {elapsed:.1f} s (bound {seconds} s)"


def fill(unit: str, size: int = MIB) -> str:
    """``unit`` repeated to about ``size`` characters."""
    return unit * (size // len(unit))


# --- credential masking ------------------------------------------------------------------------

#: About a megabyte each, shaped against one alternative of the credential patterns.
MASKING_SHAPES = {
    "a. repeated": "key " + fill("a."),
    "a- repeated": "key " + fill("a-"),
    "a+ repeated": "key " + fill("a+"),
    "a://b: repeated": fill("a://b:"),
    "a:// then colons": "a://" + ":" * MIB,
    "a://b: then a long password": "a://b:" + "c" * MIB,
    "key= repeated": fill("key="),
    "?key= repeated": fill("?key="),
    "x-api-key: repeated": fill("x-api-key:"),
    "authorization then spaces": "authorization" + " " * MIB + "x",
    "bearer repeated": fill("bearer "),
    "bearer and a megabyte token": "bearer " + "Ab" * (MIB // 2),
    "one long word": "token " + "x" * MIB,
    "a run of spaces": "pass" + " " * MIB + "x",
}


@pytest.mark.parametrize("text", MASKING_SHAPES.values(), ids=MASKING_SHAPES.keys())
def test_masking_a_megabyte_shaped_against_it_is_linear(text: str) -> None:
    redactor = Redactor([SECRET])
    with within():
        out = redactor.redact(f"{text} {SECRET} password=pw-{MARK}")
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
    settings: Settings, service_logs: Callable[[Settings], Callable[[], str]]
) -> None:
    bounded = settings.model_copy(
        update={"max_log_message_chars": 1_000, "kafka_sasl_password": SecretStr(SECRET)}
    )
    logged = service_logs(bounded)
    log = logging.getLogger("chimera.test.linear_time")
    with within():
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

LONG_KEY = "k" * (MIB // 2)


def _events() -> dict[str, tuple[bytes, type[InputError], str]]:
    """name: (a body of at most MAX_EVENT_BYTES, the error it must raise, what it names)."""
    ok = {"event_id": "evt-1", "topic": "Should cities ban cars?"}
    deep = "".join(f'{{"{c}":' for c in ("k" * 300,) * 99) + '"\\ud800"' + "}" * 99
    return {
        "a half-megabyte key over a long list": (
            json.dumps({**ok, LONG_KEY: [0] * 100_000}).encode(),
            SchemaInvalid,
            "kkkk",
        ),
        "eighty thousand unknown keys": (
            json.dumps({**ok, **{f"k{i}": 0 for i in range(80_000)}}).encode(),
            SchemaInvalid,
            "k0: Extra inputs are not permitted",
        ),
        "a megabyte event id": (
            json.dumps({**ok, "event_id": "e" * (MIB - 100)}).encode(),
            SchemaInvalid,
            "event_id",
        ),
        "a megabyte of brackets": (b"[" * (MIB // 2) + b"]" * (MIB // 2), InvalidJSON, "nested"),
        "nesting under the depth limit, long keys and a surrogate": (
            deep.encode(),
            UndecodableEvent,
            "unpaired surrogate",
        ),
        "key= a megabyte long as a topic": (
            json.dumps({**ok, "topic": fill("key=", MIB - 200)}).encode(),
            SchemaInvalid,
            "topic",
        ),
        "a.a.a. as a key": (
            json.dumps({**ok, "key " + fill("a.", MIB - 200): 1}).encode(),
            SchemaInvalid,
            "key a.a.a.",
        ),
    }


EVENTS = _events()


@pytest.mark.parametrize(("raw", "error", "names"), EVENTS.values(), ids=EVENTS.keys())
def test_the_codec_refuses_a_costly_megabyte_in_linear_time_and_quotes_it_short(
    raw: bytes, error: type[InputError], names: str
) -> None:
    assert len(raw) <= d.MAX_EVENT_BYTES
    with within(), pytest.raises(error) as info:
        validate_event(ConversationRequest, parse_json_object(raw, max_bytes=d.MAX_EVENT_BYTES))
    message = str(info.value)
    assert names in message
    # Each listed error quotes a field and a message at most the quote bound long.
    assert len(message) < LISTED_ERRORS * 2 * (quote_limit() + 40) + 500
    if isinstance(info.value, SchemaInvalid):
        fields = [e["field"] for e in info.value.errors]
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

QUARTER = MIB // 4
#: A quarter of a megabyte each (the detectors once needed minutes for a tenth of that).
TURN_SHAPES = {
    "a run of spaces": "So" + " " * QUARTER + "then.",
    "a run of line breaks and spaces": fill(" \n"),
    "thanks, endlessly": fill("thanks ", QUARTER),
    "thanks, endlessly, then a question": fill("thanks for the chat ", QUARTER) + "why?",
    "agreement without a full stop": fill("i agree but not ", QUARTER),
    "one sentence of cues": fill("great point, good discussion, take care ", QUARTER),
    "a. repeated": fill("a.", QUARTER),
    "one token": "x" * QUARTER,
    "distinct words": " ".join(f"w{i}" for i in range(QUARTER // 7)),
    "negations and pivots": fill("not but however thanks ", QUARTER) + "?",
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


@pytest.mark.parametrize("text", TURN_SHAPES.values(), ids=TURN_SHAPES.keys())
def test_the_detectors_read_a_hostile_turn_in_linear_time(text: str) -> None:
    goodbye = "Thanks for the conversation, take care!"
    turns = _turns(["Should cities ban cars? I think so.", text, text[::-1], goodbye])
    with within():
        ended = ending_of(turns)
        report = score_conversation(turns, ended_reason=ended.reason if ended else None)
        sentences(text)
        is_closing(text, after_close=True)
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


SCORE_LINES = [
    # (line, the error it must be reported with; None: it is scored)
    (_conversation("Cars make cities loud, and I would ban them downtown."), None),
    ('{"messages": ' + "[" * 1_000 + "]" * 1_000 + "}", "invalid JSON: nested too deeply"),
    (_conversation("x" * MIB), None),
    (_conversation("a lone \ud800 surrogate"), "unpaired surrogate"),
    (_conversation("fine", id="\udfff"), "unpaired surrogate"),
    (_conversation("So" + " " * QUARTER + "then."), None),
    (_conversation(fill("thanks ", QUARTER)), None),
    ('{"messages": [], "n": ' + "9" * 5_000 + "}", "a number has too many digits"),
    (
        json.dumps({"messages": [{"role": "r" * MIB, "content": "x"}]}),
        "has an unknown role 'rrrr",
    ),
    (  # longer than its max_turns, which no float holds
        _conversation("Fine.", turns=12, id="evil\x1b[2J\u202eid", metadata={"max_turns": 10**400}),
        None,
    ),
    (_conversation("Buses are the answer, and I will take care. Goodbye!"), None),
]


def test_score_reads_a_hostile_file_line_by_line(tmp_path: Path) -> None:
    source = tmp_path / "hostile.jsonl"
    source.write_text("\n".join(line for line, _ in SCORE_LINES) + "\n", encoding="utf-8")
    with within(3 * BOUND_S):  # a dozen lines, two of them of a megabyte
        result = CliRunner().invoke(score_command, ["--in", str(source)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    scored = [line.split("\t") for line in result.stdout.splitlines()]
    expected = [str(n) for n, (_, error) in enumerate(SCORE_LINES, 1) if error is None]
    assert [row[0] for row in scored] == expected
    assert all(0 <= float(row[1]) <= 1 for row in scored)
    assert scored[-2][3] == "evil\\x1b[2J\\u202eid"  # the file's id, harmless to a terminal
    errors = result.stderr.splitlines()
    bad = [(n, error) for n, (_, error) in enumerate(SCORE_LINES, 1) if error is not None]
    assert len(errors) == len(bad) + 1
    for line, (n, error) in zip(errors, bad, strict=False):
        assert line.startswith(f"line {n}: ") and error in line, line
        assert len(line) < quote_limit() + 100
    assert errors[-1].endswith(f"; {len(bad)} malformed lines")
