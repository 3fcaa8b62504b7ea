"""docs/settings.md is the settings object, rendered: it cannot drift from the code.

A field added, renamed, re-typed or given another default without regenerating the
page fails here, and so does a field without a description (its docstring), which
would leave an operator a blank line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from chimera.settings import Settings
from chimera.settings_doc import groups, render
from chimera.settings_env import env_name

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "settings.md"
HOW = "regenerate it: `make docs` (or `python -m chimera.settings_doc > docs/settings.md`)"


def test_the_committed_page_is_the_rendered_settings() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), f"docs/settings.md is stale; {HOW}"


def test_the_module_prints_the_page() -> None:
    """What `make docs` runs writes exactly what the test compares."""
    out = subprocess.run(
        [sys.executable, "-m", "chimera.settings_doc"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "CHIMERA_MAX_QUOTED_CHARS": "999"},
    ).stdout.decode()
    assert out == render()


def test_every_field_is_described_once_under_a_heading() -> None:
    listed = [name for names in groups().values() for name in names]
    assert sorted(listed) == sorted(Settings.model_fields)
    assert "Other" not in groups()
    undescribed = [n for n, info in Settings.model_fields.items() if not info.description]
    assert undescribed == [], f"add a docstring under each of these fields, then {HOW}"


def test_each_variable_appears_with_its_default() -> None:
    page = render()
    row = next(line for line in page.splitlines() if line.startswith("| `REDIS_PORT`"))
    assert "`6379`" in row
    row = next(line for line in page.splitlines() if f"`{env_name(Settings, 'api_token')}`" in line)
    assert "| secret | unset |" in row
    assert "`CHIMERA_MAX_EVENT_BYTES`" in page
    assert "`GOOGLE_API_KEY` or `GEMINI_API_KEY`" in page
