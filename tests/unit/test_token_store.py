"""The sealed token state and its backends, on real files and real processes."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_msads.token_store import (
    FileTokenStore,
    MemoryTokenStore,
    TokenCipher,
    TokenState,
    machine_lock,
    storage_key,
)

CONN_TOKEN = "M.C5_BAY.connection-refresh-token-for-store-tests"
STATE = TokenState(
    refresh_token="M.C5_BAY.ROTATED-REFRESH-store-test",
    access_token="EwA-ACCESS-TOKEN-store-test",
    access_expires_at=2_000_000_000.0,
    refresh_rotated_at=1_900_000_000.0,
    updated_at=1_900_000_000.0,
)


def test_sealed_state_reveals_no_token_and_opens_with_the_connection_token():
    blob = TokenCipher(CONN_TOKEN, "msads_default").seal(STATE)
    for secret in (STATE.refresh_token, STATE.access_token, CONN_TOKEN, "ROTATED", "ACCESS"):
        assert secret not in blob
    assert TokenCipher(CONN_TOKEN, "msads_default").open(blob) == STATE


def test_sealed_state_does_not_open_for_another_token_or_connection():
    blob = TokenCipher(CONN_TOKEN, "msads_default").seal(STATE)
    assert TokenCipher(CONN_TOKEN + "x", "msads_default").open(blob) is None
    assert TokenCipher(CONN_TOKEN, "msads_other").open(blob) is None


def test_tampered_or_garbage_state_is_ignored():
    cipher = TokenCipher(CONN_TOKEN, "c")
    blob = cipher.seal(STATE)
    flipped = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
    assert cipher.open(flipped) is None
    assert cipher.open("garbage") is None
    assert cipher.open("other-v9.x.y") is None
    assert cipher.open("") is None


def test_each_seal_uses_a_fresh_nonce():
    cipher = TokenCipher(CONN_TOKEN, "c")
    assert cipher.seal(STATE) != cipher.seal(STATE)


def test_repr_hides_tokens():
    assert "ROTATED" not in repr(STATE) and "ACCESS" not in repr(STATE)


def test_storage_key_is_safe_and_distinct():
    assert storage_key("msads_default") == "msads_token_store__msads_default"
    odd = storage_key("../etc/passwd")
    assert "/" not in odd and odd != storage_key("___etc_passwd")


def test_file_store_writes_0600_files_in_a_0700_folder(tmp_path: Path):
    store = FileTokenStore(tmp_path / "store")
    store.write("k", "v1")
    path = tmp_path / "store" / "k.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == 0o700
    store.write("k", "v2")
    assert store.read("k") == "v2"
    assert [p.name for p in (tmp_path / "store").iterdir() if p.name.endswith(".tmp")] == []
    store.delete("k")
    assert store.read("k") is None
    store.delete("k")  # idempotent


def test_file_store_sweeps_temp_files_of_killed_writers(tmp_path: Path):
    store = FileTokenStore(tmp_path)
    old = tmp_path / ".msads_token_store__c.abc123.tmp"
    young = tmp_path / ".msads_token_store__c.def456.tmp"
    other_key = tmp_path / ".msads_token_store__other.ghi789.tmp"
    for leftover in (old, young, other_key):
        leftover.write_text("sealed, half written")
    long_ago = os.stat(old).st_mtime - FileTokenStore.LEFTOVER_AGE - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(other_key, (long_ago, long_ago))
    store.write("msads_token_store__c", "state")
    assert not old.exists()  # a killed writer's leftover
    assert young.exists()  # may be another process's write in flight
    assert other_key.exists()  # another connection's files are left to its own writes
    assert store.read("msads_token_store__c") == "state"


def test_file_store_directory_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MSADS_TOKEN_STORE_DIR", str(tmp_path / "env-dir"))
    store = FileTokenStore()
    store.write("k", "v")
    assert (tmp_path / "env-dir" / "k.json").exists()


def test_file_store_unwritable_folder_names_the_fix(tmp_path: Path):
    from airflow_provider_msads.errors import TokenStoreError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TokenStoreError, match="MSADS_TOKEN_STORE_DIR"):
        FileTokenStore(blocker / "sub").write("k", "v")


def test_memory_store_round_trip():
    store = MemoryTokenStore()
    store.write("k", "v")
    assert store.read("k") == "v" and store.writes == 1
    with store.lock("k"):
        pass


def _hold_lock(lock_dir: str, key: str, held: Any, release: Any) -> None:
    with machine_lock(key, Path(lock_dir)):
        held.set()
        release.wait(60)


def test_machine_lock_excludes_other_processes(tmp_path: Path):
    """While a child holds the lock, this process cannot take it (checked with a non-blocking flock)."""
    import fcntl
    import hashlib

    ctx = multiprocessing.get_context("spawn")
    held, release = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold_lock, args=(str(tmp_path), "key", held, release))
    child.start()
    try:
        assert held.wait(60)
        path = tmp_path / (hashlib.sha256(b"key").hexdigest()[:32] + ".lock")
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        release.set()
        child.join(60)
    with machine_lock("key", tmp_path):  # released when the holder died
        pass
