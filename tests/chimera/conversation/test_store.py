"""Conversation state in the real Redis: the lease, fenced writes, stored outputs."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from chimera.conversation.state import ConversationState
from chimera.conversation.store import StateStore
from chimera.errors import LockNotAcquired, StaleLockToken
from chimera.models import ConversationRequest, TranscriptTurn
from chimera.redis_client import make_redis


@pytest.fixture
def store(redis_ns: Any) -> StateStore:
    return StateStore(make_redis(redis_ns), redis_ns)


def a_state(cid: str = "conv-1") -> ConversationState:
    request = ConversationRequest.model_validate({"event_id": "e-1", "topic": "Cars?"})
    return ConversationState.start(cid, request, timeout_s=300)


def a_turn(index: int, text: str = "hello") -> TranscriptTurn:
    return TranscriptTurn(turn_index=index, speaker="a", provider="openai", model="m", content=text)


def test_state_is_created_once(store: StateStore) -> None:
    assert store.create(a_state())
    assert not store.create(a_state())
    loaded = store.load("conv-1")
    assert loaded is not None and loaded.topic.title == "Cars?" and loaded.min_turns == 5


def test_the_lease_is_exclusive(store: StateStore) -> None:
    store.create(a_state())
    first = store.acquire("conv-1")
    with pytest.raises(LockNotAcquired) as info:
        store.acquire("conv-1")
    assert info.value.retryable
    store.release(first)
    assert store.acquire("conv-1").token > first.token


def test_a_lease_on_a_conversation_without_state_leaves_no_fence_behind(
    store: StateStore, redis_client: Any
) -> None:
    """A late task of a finished conversation takes and releases its lease: the fence
    counter the acquisition made must not outlive it (it guards no state)."""
    with store.lease("conv-gone"):
        assert redis_client.exists(store._key("conv-gone", "fence"))
    assert not redis_client.exists(
        store._key("conv-gone", "lock"), store._key("conv-gone", "fence")
    )
    store.create(a_state())
    with store.lease("conv-1"):
        pass
    assert redis_client.exists(store._key("conv-1", "fence"))  # kept while there is state


def test_a_retried_acquire_gets_its_own_lease_back(store: StateStore) -> None:
    keys = [store._key("c", "lock"), store._key("c", "fence")]
    token = store._acquire(keys=keys, args=["owner-1", 10_000, 10_000])
    assert (
        store._acquire(keys=keys, args=["owner-1", 10_000, 10_000]) == token
    )  # lost reply, retried
    assert store._acquire(keys=keys, args=["owner-2", 10_000, 10_000]) == 0


def test_a_lapsed_holder_cannot_overwrite_newer_state(store: StateStore) -> None:
    store.lease_ttl_ms = 150
    state = a_state()
    store.create(state)
    slow = store.acquire("conv-1")
    time.sleep(0.2)  # paused past its TTL (GC, SIGSTOP ...)
    fast = store.acquire("conv-1")
    newer = state.model_copy(update={"turns": [a_turn(0, "from the new holder")]})
    store.save(newer, fast)
    stale = state.model_copy(update={"turns": [a_turn(0, "from the old holder")]})
    with pytest.raises(StaleLockToken):
        store.save(stale, slow)
    loaded = store.load("conv-1")
    assert loaded is not None and loaded.turns[0].content == "from the new holder"


def test_the_lease_is_extended_while_work_runs(store: StateStore) -> None:
    store.lease_ttl_ms = 1_000
    with store.lease("conv-1"):
        time.sleep(2.5)  # more than twice the TTL
        with pytest.raises(LockNotAcquired):
            store.acquire("conv-1")
    store.acquire("conv-1")  # released at the end of the block


def test_the_first_stored_output_wins(store: StateStore) -> None:
    assert store.put_output("conv-1", a_turn(3, "first")).content == "first"
    assert store.put_output("conv-1", a_turn(3, "second")).content == "first"
    stored = store.get_output("conv-1", 3)
    assert stored is not None and stored.content == "first"
    assert store.get_output("conv-1", 4) is None


def test_delete_forgets_everything(store: StateStore, redis_client: Any, redis_ns: Any) -> None:
    store.create(a_state())
    store.put_output("conv-1", a_turn(0))
    lease = store.acquire("conv-1")
    store.release(lease)
    store.delete("conv-1")
    assert store.load("conv-1") is None and store.get_output("conv-1", 0) is None
    assert list(redis_client.scan_iter(match=redis_ns.redis_key_prefix + "conv:*")) == []


def test_one_keeper_thread_extends_every_lease_and_ends_when_idle(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from chimera.conversation import store as store_module

    monkeypatch.setattr(store_module, "KEEPER_IDLE_S", 0.3)
    store.lease_ttl_ms = 1_000
    cids = [f"conv-{i}" for i in range(5)]
    with contextlib.ExitStack() as held:
        for cid in cids:
            held.enter_context(store.lease(cid))
        time.sleep(2.5)  # more than twice the TTL
        for cid in cids:  # every lease is still held
            with pytest.raises(LockNotAcquired):
                store.acquire(cid)
        keeper = store._keeper._thread
        assert keeper is not None and keeper.is_alive()
        # One thread for all five, not a thread per lease.
        assert not [t for t in threading.enumerate() if t.name.startswith("lease-conv")]
    for cid in cids:  # released at the end of the block
        store.release(store.acquire(cid))
    keeper.join(timeout=2)
    assert not keeper.is_alive() and store._keeper._thread is None  # idle: it ended
    with store.lease("conv-0"):  # and a new one starts when needed
        assert store._keeper._thread is not None and store._keeper._thread.is_alive()
