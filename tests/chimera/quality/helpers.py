"""Building transcripts for the quality.v2 tests."""

from __future__ import annotations

from chimera.models.transcript import TranscriptTurn


def transcript(*texts: str, speakers: tuple[str, ...] = ("Ana", "Ben")) -> list[TranscriptTurn]:
    """Turns of ``texts``, the speakers taking turns."""
    return [
        TranscriptTurn(
            turn_index=i,
            speaker=speakers[i % len(speakers)],
            provider="anthropic" if i % 2 == 0 else "google",
            model="m",
            content=text,
        )
        for i, text in enumerate(texts)
    ]
