"""Crash durability: SIGKILL the refreshing process anywhere in refresh + persist, 100+ times.

The emulator runs with ``strict_rotation=True``: a refresh token dies as soon as its successor is
used. A client that loses the rotated token (a torn write, a write after the hand-out, a store
that keeps the old token once the new one was used) is then locked out, and the refresh that
follows a kill fails. The package's promise: the rotated token is persisted atomically *before*
the access token is handed out, so whatever instant the kill hits, the next refresh succeeds from
the store, without falling back to the connection's own (by then revoked) token.

A single-threaded fork server (``_rel_token_child.py forkserver``) forks each refreshing process,
kills it after a seeded random delay and reports whether the kill landed. The emulator's latency
and a slightly slow fsync stretch the refresh and the persist so that the kills spread over both.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from _support.reliability import REPO_ROOT, child_env, credentials_for

from airflow_provider_msads.token_store import FileTokenStore, TokenCipher, storage_key
from airflow_provider_msads.tokens.auth import TokenManager, clear_process_cache

CHILD = str(Path(__file__).with_name("_rel_token_child.py"))
KILLS = 100  # kills that must land (runs whose child finished before the kill do not count)
MAX_RUNS = 300
SEED = 20260501
LATENCY = 0.03  # seconds the emulator holds each answer
FSYNC_DELAY_MS = 8  # per fsync (the file and its folder): a busy disk


def _killed(outcomes: Counter[str]) -> int:
    return sum(n for name, n in outcomes.items() if name.startswith("killed"))


@pytest.mark.msads_emulator(strict_rotation=True)
def test_sigkill_anywhere_in_refresh_and_persist_never_loses_the_token(msads_emulator, tmp_path: Path):
    rng = random.Random(SEED)
    conn = msads_emulator.connection_dict()
    conn_refresh = conn["extra"]["refresh_token"]
    store_dir = tmp_path / "store"
    store = FileTokenStore(store_dir)
    key = storage_key("msads_crash")
    credentials = credentials_for(msads_emulator, conn_id="msads_crash", refresh_token=conn_refresh)
    cipher = TokenCipher.for_credentials(credentials)

    # Start from a rotated state, as in production: the connection's own token is soon revoked.
    TokenManager(credentials, store=store).get_token()
    msads_emulator.latency = LATENCY

    server = subprocess.Popen(
        [sys.executable, CHILD, "forkserver", str(store_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(
            {
                "MSADS_REL_CONN": json.dumps(conn),
                "MSADS_REL_CONN_ID": "msads_crash",
                "FSYNC_DELAY_MS": str(FSYNC_DELAY_MS),
            }
        ),
        cwd=str(REPO_ROOT),
    )
    outcomes: Counter[str] = Counter()

    def run_child(delay_ms: float) -> str:
        server.stdin.write(f"run {delay_ms:.3f}\n")  # type: ignore[union-attr]
        server.stdin.flush()  # type: ignore[union-attr]
        answer = server.stdout.readline().strip()  # type: ignore[union-attr]
        assert answer.split(" ")[0] in ("killed", "finished"), answer + server.stderr.read()[-3000:]  # type: ignore[union-attr]
        return answer

    try:
        assert server.stdout.readline().strip() == "ready", server.stderr.read()[-3000:]  # type: ignore[union-attr]
        # Calibrate: how long does a whole refresh + persist take in a forked child here?
        durations = sorted(float(run_child(-1).split()[1]) for _ in range(5))
        window = durations[2] * 1.15 / 1000  # kills spread over the whole refresh, and a bit past it
        run = 0
        while _killed(outcomes) < KILLS and run < MAX_RUNS:
            run += 1
            before_requests = msads_emulator.counters["token.refresh_token"]
            before_blob = store.read(key)
            delay_ms = rng.uniform(0, window) * 1000

            result = run_child(delay_ms).split(" ")[0]

            sent = msads_emulator.counters["token.refresh_token"] > before_requests
            persisted = store.read(key) != before_blob
            if result == "finished":
                outcomes["finished"] += 1
            elif not sent:
                outcomes["killed before the request"] += 1
            elif not persisted:
                outcomes["killed after the request, before the persist"] += 1
            else:
                outcomes["killed after the persist"] += 1

            # The store is never torn: it opens with the connection's token.
            state = cipher.open(store.read(key))
            assert state is not None, f"run {run}: the store no longer opens"

            # The following refresh succeeds from the store (forced, so the refresh token is used).
            clear_process_cache()
            manager = TokenManager(credentials, store=store)
            tokens = manager.get_token(force_refresh=True)
            assert manager.info.used_fallback is False, f"run {run}: the rotated token was lost"
            assert tokens.access_token == msads_emulator.issued_access_tokens[-1]
            assert msads_emulator.token_requests[-1]["refresh_token"] == state.refresh_token
    finally:
        if server.poll() is None:
            server.stdin.close()  # type: ignore[union-attr]
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    print(f"\n{run} runs, seed {SEED}, refresh + persist takes {durations[2]:.0f} ms: {dict(outcomes)}")
    leftovers = [p.name for p in store_dir.iterdir() if p.name.endswith(".tmp")]
    print(f"temp files left by kills mid-write: {len(leftovers)}")
    assert _killed(outcomes) >= KILLS, outcomes
    # The kills landed all over the refresh, not only before or after it.
    assert outcomes["killed after the request, before the persist"] >= 10, outcomes
    assert outcomes["killed before the request"] + outcomes["killed after the persist"] >= 1, outcomes
    # And the connection's own token was revoked long ago: only the store kept us alive.
    assert not msads_emulator.is_refresh_token_valid(conn_refresh)
