"""Reading conversations back from JSON lines, in either format of
``chimera.conversation.formats`` or as written elsewhere.

:func:`read_jsonl` detects the format per line (``messages``: OpenAI,
``conversations``: ShareGPT) and tolerates data from elsewhere: extra keys, no metadata,
``"from": "user"/"assistant"``, OpenAI content as a list of text parts, ``developer``
messages (as system); tool messages are skipped.  Without ``metadata.turns`` a speaker is the
message's ``name``, else its role (``from``), and the provider is guessed from that label
(``claude`` -> anthropic, ``gemini``/``gemma`` -> google, anything else -> openai).  A
malformed line becomes a :class:`LineError` naming the line and the problem; the rest of
the file is still read.  That includes lines no one should have written: JSON nested
deeper than the parser goes, an unpaired surrogate escape (``"\\ud800"``: valid JSON, but
no text), a number of thousands of digits.  A problem quotes at most
``CHIMERA_MAX_QUOTED_CHARS`` of what the line holds (``chimera.untrusted``).

:class:`JsonlReader` reads a binary stream the same way with a bound on each line: it reads
at most ``max_line_bytes`` (and one byte more) of a line, and a longer line is that line's
error, passed over in bounded chunks and never held whole.  It counts the lines it read, so
an empty input (or one of blank lines only) can be told apart from one of bad lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, Literal, get_args

from pydantic import ValidationError

from chimera.conversation.ending import EndReason
from chimera.conversation.formats import TURN_META_FIELDS, Format
from chimera.models.participants import Provider
from chimera.models.transcript import TranscriptTurn
from chimera.untrusted import clip

#: A surrogate code point, or the JSON escape of one: a line without either (almost
#: every line) is not walked to look for an unpaired one.
_SURROGATE_HINT = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: The ending reasons a conversation is recorded with (``metadata.ended_reason``).
ENDED_REASONS: Final = frozenset((*get_args(EndReason), "timeout"))
#: An over-size line is passed over this many bytes at a time.
_SKIP_CHUNK_BYTES: Final = 65_536
#: A ``min_turns``/``max_turns`` above this is no conversation's (and would overflow the
#: floating point of the length score): read as absent.
MAX_TURN_LIMIT: Final = 1_000_000
_OPENAI_ROLES: Final = {"user": "user", "assistant": "assistant"}
_OPENAI_SYSTEM: Final = frozenset({"system", "developer"})
_OPENAI_SKIP: Final = frozenset({"tool", "function"})
_SHAREGPT_ROLES: Final = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
}
_SHAREGPT_SYSTEM: Final = frozenset({"system"})
_SHAREGPT_SKIP: Final = frozenset({"function_call", "observation", "tool", "function"})


@dataclass(frozen=True)
class ParsedConversation:
    """A conversation read from one JSON line."""

    line_no: int
    format: Format
    turns: tuple[TranscriptTurn, ...]
    system: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        value = self.metadata.get("id")
        return value if isinstance(value, str) else None

    @property
    def ended_reason(self) -> str | None:
        value = self.metadata.get("ended_reason")
        return value if isinstance(value, str) else None

    def turn_limit(self, name: Literal["min_turns", "max_turns"]) -> int | None:
        """``min_turns`` or ``max_turns`` from the metadata, when it holds a positive int
        (at most ``MAX_TURN_LIMIT``)."""
        value = self.metadata.get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TURN_LIMIT
        return value if ok else None


@dataclass(frozen=True)
class LineError:
    """A line that is not a conversation in either format."""

    line_no: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.message}"


class MalformedConversation(ValueError):
    """Raised when a decoded line is not a conversation in either format."""


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[ParsedConversation | LineError]:
    """Parse each non-blank line of ``lines`` (1-based numbers), whatever its format."""
    for line_no, raw in enumerate(lines, start=1):
        item = parse_line(raw, line_no)
        if item is not None:
            yield item


class JsonlReader:
    """The conversations of a binary stream, line by line, each line at most
    ``max_line_bytes`` long (its line break aside); iterate once."""

    def __init__(self, stream: BinaryIO, max_line_bytes: int) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be positive, got {max_line_bytes}")
        self._stream = stream
        self.max_line_bytes = max_line_bytes
        #: Lines read so far, blank ones included.
        self.lines = 0
        #: Lines read so far that were not blank.
        self.non_blank = 0

    def __iter__(self) -> Iterator[ParsedConversation | LineError]:
        limit = self.max_line_bytes
        while raw := self._stream.readline(limit + 2):  # the line and its "\r\n"
            self.lines += 1
            if len(raw) - _break_length(raw) > limit:
                self.non_blank += 1
                if raw[-1:] != b"\n":
                    self._pass_over_rest()
                yield LineError(
                    self.lines,
                    f"longer than the limit of {limit} bytes (CHIMERA_SCORE_MAX_LINE_BYTES);"
                    " not read",
                )
                continue
            item = parse_line(raw, self.lines)
            if item is not None:
                self.non_blank += 1
                yield item

    def _pass_over_rest(self) -> None:
        while chunk := self._stream.readline(_SKIP_CHUNK_BYTES):
            if chunk[-1:] == b"\n":
                return


def _break_length(raw: bytes) -> int:
    if raw.endswith(b"\r\n"):
        return 2
    return 1 if raw.endswith(b"\n") else 0


def parse_line(raw: str | bytes, line_no: int) -> ParsedConversation | LineError | None:
    """One line as a conversation, or the line's error; None for a blank line."""
    decoded = _decode(raw, line_no)
    if decoded is _BLANK:
        return None
    if isinstance(decoded, LineError):
        return decoded
    try:
        return parse_conversation(decoded, line_no)
    except MalformedConversation as exc:
        return LineError(line_no, str(exc))


#: What :func:`_decode` returns for a blank line (``None`` is JSON's ``null``).
_BLANK: Final = object()


def _decode(raw: str | bytes, line_no: int) -> Any:
    """The JSON value of one line, its :class:`LineError`, or ``_BLANK``."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        return LineError(line_no, f"not UTF-8 (byte {exc.start})")
    text = text.strip().removeprefix("\ufeff")
    if not text:
        return _BLANK
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return LineError(line_no, _json_problem(exc))
    if _SURROGATE_HINT.search(text) and _holds_surrogate(obj):
        return LineError(line_no, "holds an unpaired surrogate escape (not Unicode text)")
    return obj


def _json_problem(exc: ValueError | RecursionError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply"
    return "invalid JSON: a number has too many digits"  # more digits than Python converts


def _holds_surrogate(obj: Any) -> bool:
    """Whether a key or a string anywhere in ``obj`` holds an unpaired surrogate (paired
    escapes were joined into one character by the parser)."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def parse_conversation(obj: Any, line_no: int = 1) -> ParsedConversation:
    """One decoded JSON line as a conversation, or MalformedConversation saying why not."""
    if not isinstance(obj, dict):
        raise MalformedConversation(f"expected a JSON object, got {_kind(obj)}")
    metadata = obj.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise MalformedConversation(f"'metadata' must be an object, got {_kind(metadata)}")
    if "id" not in metadata and isinstance(obj.get("id"), str):
        metadata = {**metadata, "id": obj["id"]}
    if "messages" in obj:
        fmt: Format = "openai"
        system, raw_turns = _openai_messages(obj["messages"])
    elif "conversations" in obj:
        fmt = "sharegpt"
        system, raw_turns = _sharegpt_messages(obj["conversations"])
    else:
        raise MalformedConversation("no 'messages' (openai) or 'conversations' (sharegpt) key")
    if not raw_turns:
        raise MalformedConversation("the conversation has no user or assistant turns")
    turns = _transcript(raw_turns, metadata.get("turns"))
    return ParsedConversation(line_no, fmt, turns, system, metadata)


_RawTurn = tuple[str, str]  # (speaker label, content)


def _openai_messages(messages: Any) -> tuple[str | None, list[_RawTurn]]:
    if not isinstance(messages, list):
        raise MalformedConversation(f"'messages' must be a list, got {_kind(messages)}")
    system: list[str] = []
    turns: list[_RawTurn] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise MalformedConversation(f"{where} must be an object, got {_kind(message)}")
        role = message.get("role")
        if not isinstance(role, str):
            raise MalformedConversation(f"{where} has no 'role'")
        if role in _OPENAI_SKIP or (message.get("content") is None and message.get("tool_calls")):
            continue
        content = _openai_content(message.get("content"), where)
        if role in _OPENAI_SYSTEM:
            system.append(content)
        elif role in _OPENAI_ROLES:
            name = message.get("name")
            turns.append((name if isinstance(name, str) and name else role, content))
        else:
            raise MalformedConversation(f"{where} has an unknown role {clip(role)!r}")
    return ("\n\n".join(system) or None), turns


def _openai_content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    if content is None:
        raise MalformedConversation(f"{where} has no 'content'")
    raise MalformedConversation(f"{where}.content must be a string, got {_kind(content)}")


def _sharegpt_messages(conversations: Any) -> tuple[str | None, list[_RawTurn]]:
    if not isinstance(conversations, list):
        raise MalformedConversation(f"'conversations' must be a list, got {_kind(conversations)}")
    system: list[str] = []
    turns: list[_RawTurn] = []
    for i, message in enumerate(conversations):
        where = f"conversations[{i}]"
        if not isinstance(message, dict):
            raise MalformedConversation(f"{where} must be an object, got {_kind(message)}")
        source = message.get("from", message.get("role"))
        if not isinstance(source, str):
            raise MalformedConversation(f"{where} has no 'from'")
        value = message.get("value", message.get("content"))
        if value is None:
            raise MalformedConversation(f"{where} has no 'value'")
        if not isinstance(value, str):
            raise MalformedConversation(f"{where}.value must be a string, got {_kind(value)}")
        low = source.lower()
        if low in _SHAREGPT_SKIP:
            continue
        if low in _SHAREGPT_SYSTEM:
            system.append(value)
        elif low in _SHAREGPT_ROLES:
            name = message.get("name")
            turns.append((name if isinstance(name, str) and name else source, value))
        else:
            raise MalformedConversation(f"{where} has an unknown 'from' {clip(source)!r}")
    return ("\n\n".join(system) or None), turns


def _transcript(raw: list[_RawTurn], turn_meta: Any) -> tuple[TranscriptTurn, ...]:
    aligned = isinstance(turn_meta, list) and len(turn_meta) == len(raw)
    turns = []
    for i, (label, content) in enumerate(raw):
        meta = turn_meta[i] if aligned and isinstance(turn_meta[i], dict) else {}
        turns.append(_turn(i, label, content, meta))
    return tuple(turns)


def _turn(index: int, label: str, content: str, meta: Mapping[str, Any]) -> TranscriptTurn:
    inferred: dict[str, Any] = {
        "turn_index": index,
        "content": content,
        "speaker": label,
        "provider": guess_provider(label),
        "model": label,
    }
    known = {k: meta[k] for k in TURN_META_FIELDS if meta.get(k) is not None}
    try:
        return TranscriptTurn.model_validate(inferred | known)
    except ValidationError:
        # Metadata from elsewhere that does not fit: the message alone still makes a turn.
        return TranscriptTurn.model_validate(inferred)


def guess_provider(label: str) -> Provider:
    """The provider a speaker label or model name most likely belongs to."""
    low = label.lower()
    if "claude" in low or "anthropic" in low:
        return "anthropic"
    if "gemini" in low or "gemma" in low or "google" in low:
        return "google"
    return "openai"


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number" if isinstance(value, int | float) else "value")
