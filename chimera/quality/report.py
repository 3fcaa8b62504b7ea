"""Calibration figures of quality.v2 on labelled conversations, per split.

``python -m chimera.quality.report FILE...`` reads JSON lines whose ``metadata.label`` holds
``score`` (1-5), ``defects`` and ``split`` (``tune``/``heldout``) -- the set in
``tests/data/quality`` -- and prints, for each split and for all: the Spearman rank
correlation between labels and scores, and at the threshold how many conversations labelled
1-2 are kept and what share of those labelled 4-5 are; then each labelled defect's recall
(the conversations labelled with it that are flagged with it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.conversation.parsing import ParsedConversation, read_jsonl
from chimera.quality.lines import inputs_of
from chimera.quality.score import DEFAULT_MIN_QUALITY, QualityV2Report, score_v2
from chimera.quality.stats import spearman as rank_correlation


@dataclass(frozen=True)
class Scored:
    key: str
    label: int
    split: str
    defects: tuple[str, ...]
    report: QualityV2Report

    @property
    def flagged(self) -> set[str]:
        return {name for turn in self.report.turns for name in turn.flags}


@dataclass(frozen=True)
class Figures:
    n: int
    spearman: float
    low_kept: int
    low: int
    high_kept: int
    high: int

    @property
    def high_share(self) -> float:
        return self.high_kept / self.high if self.high else 0.0


def load(paths: Iterable[Path]) -> list[Scored]:
    """Score every labelled line of ``paths``."""
    out = []
    for path in paths:
        with path.open(encoding="utf-8") as fh:
            for item in read_jsonl(fh):
                if isinstance(item, ParsedConversation):
                    label = item.metadata.get("label") or {}
                    report = score_v2(item.turns, **inputs_of(item))
                    key = item.id or f"{path.name}:{item.line_no}"
                    out.append(
                        Scored(key, int(label["score"]), str(label.get("split", "")),
                               tuple(label.get("defects", ())), report)
                    )  # fmt: skip
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of labels and scores (0 when either side is constant)."""
    return rank_correlation(x, y) or 0.0


def figures(items: Sequence[Scored]) -> Figures:
    low = [s for s in items if s.label <= 2]
    high = [s for s in items if s.label >= 4]
    return Figures(
        n=len(items),
        spearman=spearman([s.label for s in items], [s.report.score for s in items]),
        low_kept=sum(s.report.accepted for s in low),
        low=len(low),
        high_kept=sum(s.report.accepted for s in high),
        high=len(high),
    )


def recall(items: Sequence[Scored]) -> dict[str, tuple[int, int]]:
    """Per labelled defect: (conversations flagged with it, conversations labelled with it)."""
    out: dict[str, tuple[int, int]] = {}
    for s in items:
        for d in s.defects:
            hit, total = out.get(d, (0, 0))
            out[d] = (hit + (d in s.flagged), total + 1)
    return dict(sorted(out.items()))


def render(items: Sequence[Scored]) -> str:
    lines = [f"quality.v2 at min_quality {DEFAULT_MIN_QUALITY}"]
    for split in ("tune", "heldout", "all"):
        part = [s for s in items if split in ("all", s.split)]
        if not part:
            continue
        f = figures(part)
        lines.append(
            f"{split:8} n={f.n:3}  spearman={f.spearman:.3f}  labelled 1-2 kept: "
            f"{f.low_kept}/{f.low}  labelled 4-5 kept: {f.high_kept}/{f.high} "
            f"({f.high_share:.0%})"
        )
    lines.append("defect recall (conversations flagged / labelled):")
    lines.extend(f"  {d:16} {h}/{t}" for d, (h, t) in recall(items).items())
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stderr.write("usage: python -m chimera.quality.report FILE...\n")
        return 2
    sys.stdout.write(render(load(Path(a) for a in args)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
