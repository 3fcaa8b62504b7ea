"""A job's dataset card: what an export holds, in figures, as Markdown beside the JSONL.

``CardStats`` takes the exported conversations one at a time (``add``) while the export
streams them; what it keeps per conversation is one score, never a transcript.  The
job's counts, spend, $ per accepted conversation and yield are its ``Figures`` (the
same the job's status shows); everything else describes the conversations exported.
"""

from __future__ import annotations

import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from chimera.jobs.figures import Figures

#: Bins of the score histogram over [0, 1] (the last one includes 1).
HISTOGRAM_BINS: Final = 10
#: Width of the histogram's longest bar, in characters.
BAR_WIDTH: Final = 30
#: How a participant without a persona is listed.
NO_PERSONA: Final = "(default persona)"
#: A persona or a name is clipped to this many characters in the card.
CELL_CHARS: Final = 160


@dataclass
class CardStats:
    """Figures of the conversations exported, accumulated one conversation at a time."""

    exported: int = 0
    turn_counts: Counter[int] = field(default_factory=Counter)
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    #: ``provider/model`` -> turns it spoke.
    models: Counter[str] = field(default_factory=Counter)
    providers: Counter[str] = field(default_factory=Counter)
    #: prompt version -> conversations that used it.
    prompt_versions: Counter[str] = field(default_factory=Counter)
    #: persona -> participants (seats) that had it.
    personas: Counter[str] = field(default_factory=Counter)
    scores: array[float] = field(default_factory=lambda: array("d"))
    unscored: int = 0
    cost_usd: Decimal = Decimal(0)
    first_created: datetime | None = None
    last_created: datetime | None = None

    def add(
        self,
        *,
        turns: list[dict[str, Any]],
        participants: list[dict[str, Any]],
        prompt_versions: list[str],
        score: float | None,
        cost_usd: Decimal,
        created_at: datetime,
    ) -> None:
        self.exported += 1
        self.turn_counts[len(turns)] += 1
        self.turns += len(turns)
        for t in turns:
            self.input_tokens += int(t["input_tokens"])
            self.output_tokens += int(t["output_tokens"])
            self.models[f"{t['provider']}/{t['model']}"] += 1
            self.providers[str(t["provider"])] += 1
        for version in prompt_versions:
            self.prompt_versions[version] += 1
        for p in participants:
            self.personas[str(p.get("persona") or NO_PERSONA)] += 1
        if score is None:
            self.unscored += 1
        else:
            self.scores.append(score)
        self.cost_usd += cost_usd
        if self.first_created is None or created_at < self.first_created:
            self.first_created = created_at
        if self.last_created is None or created_at > self.last_created:
            self.last_created = created_at

    def turn_summary(self) -> dict[str, Any]:
        """min / median / max turns per conversation, mean tokens per turn."""
        if not self.exported:
            return dict.fromkeys(("min", "median", "max", "in_per_turn", "out_per_turn"))
        values = sorted(self.turn_counts.elements())
        return {
            "min": values[0],
            "median": statistics.median(values),
            "max": values[-1],
            "in_per_turn": self.input_tokens / self.turns if self.turns else None,
            "out_per_turn": self.output_tokens / self.turns if self.turns else None,
        }

    def score_summary(self) -> dict[str, Any]:
        """min, quartiles (linear interpolation, as Postgres' ``percentile_cont``), max."""
        if not self.scores:
            return {"min": None, "q1": None, "median": None, "q3": None, "max": None}
        values = sorted(self.scores)
        if len(values) == 1:
            q1 = med = q3 = values[0]
        else:
            q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return {"min": values[0], "q1": q1, "median": med, "q3": q3, "max": values[-1]}

    def histogram(self) -> list[int]:
        """Scores per bin of width 1/HISTOGRAM_BINS (a score of 1 in the last bin)."""
        bins = [0] * HISTOGRAM_BINS
        for s in self.scores:
            bins[min(HISTOGRAM_BINS - 1, max(0, int(s * HISTOGRAM_BINS)))] += 1
        return bins


@dataclass(frozen=True)
class CardHeader:
    """What the card says of the job itself."""

    job_id: str
    name: str
    status: str
    spec: dict[str, Any]
    created_at: datetime
    figures: Figures
    fmt: str
    include_all: bool
    skipped: dict[str, int]


def render(head: CardHeader, stats: CardStats) -> str:
    """The card as Markdown."""
    fig = head.figures
    per = fig.cost_per_accepted_usd
    kept = "every finished conversation" if head.include_all else "accepted conversations only"
    lines = [
        f"# Dataset card: {_md(head.name)}",
        "",
        f"Job `{head.job_id}` (status {head.status}), exported as {head.fmt} JSONL: {kept}.",
        "",
        "## Counts",
        "",
        "| figure | value |",
        "|---|---|",
        f"| conversations exported | {stats.exported} |",
        f"| accepted | {fig.accepted} |",
        f"| finished | {fig.finished} |",
    ]
    lines += [f"| rejected ({r}) | {n} |" for r, n in sorted(fig.rejected.items())]
    lines += [f"| skipped by the export ({r}) | {n} |" for r, n in sorted(head.skipped.items())]
    lines += [
        f"| yield (accepted / finished) | {_num(fig.yield_, 4)} |",
        "",
        "## Spend",
        "",
        "| figure | value |",
        "|---|---|",
        f"| spend, whole job (USD) | {fig.cost_usd:.6f} |",
        f"| USD per accepted conversation | {'-' if per is None else f'{per:.6f}'} |",
        f"| spend on the conversations exported (USD) | {stats.cost_usd:.6f} |",
        f"| LLM calls | {fig.llm_calls} |",
        f"| tokens | {fig.input_tokens} in, {fig.output_tokens} out |",
        "",
    ]
    lines += _counter_section("Models (turns spoken)", stats.models)
    lines += _counter_section("Providers (turns spoken)", stats.providers)
    lines += _counter_section("Prompt versions (conversations)", stats.prompt_versions)
    lines += _counter_section("Personas (participants)", stats.personas)
    t = stats.turn_summary()
    lines += [
        "## Turns",
        "",
        "| figure | value |",
        "|---|---|",
        f"| turns per conversation (min / median / max) | {t['min']} / {t['median']}"
        f" / {t['max']} |",
        f"| turns in all | {stats.turns} |",
        f"| input tokens per turn (mean) | {_num(t['in_per_turn'], 1)} |",
        f"| output tokens per turn (mean) | {_num(t['out_per_turn'], 1)} |",
        "",
    ]
    s = stats.score_summary()
    lines += [
        "## Quality scores",
        "",
        "| min | q1 | median | q3 | max | unscored |",
        "|---|---|---|---|---|---|",
        f"| {' | '.join(_num(s[k], 4) for k in ('min', 'q1', 'median', 'q3', 'max'))}"
        f" | {stats.unscored} |",
        "",
        "```",
        *_histogram_lines(stats.histogram()),
        "```",
        "",
        "## Dates",
        "",
        "| figure | value |",
        "|---|---|",
        f"| job created | {head.created_at.isoformat()} |",
        f"| first conversation | {_iso(stats.first_created)} |",
        f"| last conversation | {_iso(stats.last_created)} |",
        "",
    ]
    return "\n".join(lines)


def _counter_section(title: str, counts: Counter[str]) -> list[str]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    rows = [f"| {_md(k)} | {n} |" for k, n in ordered]
    return [f"## {title}", "", "| value | count |", "|---|---|", *(rows or ["| - | 0 |"]), ""]


def _histogram_lines(bins: list[int]) -> list[str]:
    top = max(bins) or 1
    out = []
    for i, n in enumerate(bins):
        lo, hi = i / HISTOGRAM_BINS, (i + 1) / HISTOGRAM_BINS
        bar = "#" * round(n * BAR_WIDTH / top)
        close = "]" if i == HISTOGRAM_BINS - 1 else ")"
        out.append(f"[{lo:.1f}, {hi:.1f}{close} {n:>6} {bar}")
    return out


def _md(text: str) -> str:
    """``text`` in a Markdown table cell: one line, clipped, pipes escaped."""
    line = " ".join(text.split())
    if len(line) > CELL_CHARS:
        line = line[: CELL_CHARS - 1] + "…"
    return line.replace("|", "\\|")


def _num(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _iso(value: datetime | None) -> str:
    return "-" if value is None else value.isoformat()
