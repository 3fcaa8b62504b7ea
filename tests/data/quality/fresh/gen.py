"""Build the fresh held-out labelled set from its plain-text source.

    .venv/bin/python tests/data/quality/fresh/gen.py

reads ``fresh/*.txt`` (the source layout of ``../build.py``, see ../README.md) and writes
``fresh.openai.jsonl`` and ``fresh.sharegpt.jsonl`` beside ``build.py``.  Every line is in
split ``fresh``: these conversations were written after the scorer was calibrated and are
never used to tune it.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("quality_build", HERE.parent / "build.py")
assert _spec is not None and _spec.loader is not None
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)

MIN_WORDS, MAX_WORDS = 30, 200
#: Defects whose turns are short by nature (near-empty, cut off, a pleasantry).
_SHORT_OK = {"empty", "truncation", "pleasantry_only", "refusal", "echo"}


def check(items: list[dict[str, Any]]) -> list[str]:
    problems = []
    keys = Counter(i["key"] for i in items)
    problems += [f"duplicate key {k}" for k, n in keys.items() if n > 1]
    for item in items:
        label = build._label(item)
        n = len(item["turns"])
        if not 2 <= n <= 14:
            problems.append(f"{item['key']}: {n} turns")
        if not 1 <= label["score"] <= 5:
            problems.append(f"{item['key']}: label {label['score']}")
        short_ok = bool(_SHORT_OK & set(label["defects"]))
        for i, (_, text) in enumerate(item["turns"]):
            words = len(text.split())
            if words > MAX_WORDS or (words < MIN_WORDS and not short_ok):
                problems.append(f"{item['key']} turn {i}: {words} words")
    return problems


def main() -> int:
    items = []
    for path in sorted(HERE.glob("*.txt")):
        items += build.parse(path.read_text(encoding="utf-8"))
    for item in items:
        item["split"] = "fresh"
    problems = check(items)
    for problem in problems:
        print(problem, file=sys.stderr)
    out: dict[str, list[str]] = {"openai": [], "sharegpt": []}
    for n, item in enumerate(items):
        line = build._full(item, n) if item["meta"] == "full" else build._bare(item)
        out[item["format"]].append(line)
    for fmt, lines in out.items():
        path = HERE.parent / f"fresh.{fmt}.jsonl"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scores = Counter(build._label(i)["score"] for i in items)
    defects = Counter(d for i in items for d in build._label(i)["defects"])
    metas = Counter(i["meta"] for i in items)
    formats = Counter(i["format"] for i in items)
    clean = sum(1 for i in items if not build._label(i)["defects"])
    print(f"{len(items)} conversations; labels {dict(sorted(scores.items()))}")
    print("defects " + ", ".join(f"{d} {defects[d]}" for d in build.DEFECTS) + f", clean {clean}")
    print(f"metadata {dict(metas)}; formats {dict(formats)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
