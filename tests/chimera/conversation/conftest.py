"""Fixtures of the conversation tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from chimera.conversation.engine import ConversationEngine


@pytest.fixture
def engine(make_engine: Callable[..., ConversationEngine]) -> ConversationEngine:
    """A conversation engine on this test's own topics and keys; one LLM retry."""
    return make_engine()
