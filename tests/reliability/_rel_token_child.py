"""Child processes of the concurrency and crash tests (run as a script, never imported by pytest).

Modes (first argument):

``get STORE_DIR CALLS``
    Build a TokenManager over a FileTokenStore, print ``ready``, wait for a line on stdin (the
    start signal, so that all children ask at once), call ``get_access_token()`` CALLS times and
    print the tokens as JSON.

``variable MACHINE``
    The same against the Airflow Variable store (a server-side process, metastore access). Each
    simulated machine has its own XDG_RUNTIME_DIR, hence its own lock file: no lock is shared between them.

``forkserver STORE_DIR``
    Import everything once, then for every ``run DELAY_MS`` line on stdin fork a child that does a
    forced refresh (refresh + persist), SIGKILL it after DELAY_MS, and answer ``killed`` or
    ``finished``. Forking from this single-threaded server keeps 100+ runs fast. ``FSYNC_DELAY_MS``
    (env) slows each fsync a little, like a busy disk, to widen the persist window.

The connection comes as JSON in ``MSADS_REL_CONN`` and its id in ``MSADS_REL_CONN_ID``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time


def _manager(store):
    from airflow_provider_msads.connection.credentials import parse_credentials
    from airflow_provider_msads.tokens.auth import TokenManager

    conn = json.loads(os.environ["MSADS_REL_CONN"])
    credentials = parse_credentials(
        conn_id=os.environ.get("MSADS_REL_CONN_ID", "msads_rel"),
        login=conn["login"],
        password=conn["password"],
        extra=conn["extra"],
    )
    return TokenManager(credentials, store=store)


def _wait_for_start() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def _get(store_dir: str, calls: int) -> None:
    from airflow_provider_msads.token_store import FileTokenStore

    manager = _manager(FileTokenStore(store_dir))
    _wait_for_start()
    tokens = [manager.get_access_token() for _ in range(calls)]
    print(json.dumps({"pid": os.getpid(), "tokens": tokens}), flush=True)


def _variable(machine: str) -> None:
    from airflow_provider_msads.token_store import VariableTokenStore

    store = VariableTokenStore()
    manager = _manager(store)
    store.read(manager.key)  # warm the metastore connection before the start signal
    _wait_for_start()
    token = manager.get_access_token()
    forced = manager.get_token(force_refresh=True).access_token  # then each machine refreshes again
    print(json.dumps({"machine": machine, "token": token, "forced": forced}), flush=True)


def _forkserver(store_dir: str) -> None:
    from airflow_provider_msads.token_store import FileTokenStore

    delay = float(os.environ.get("FSYNC_DELAY_MS", "0")) / 1000
    if delay:
        real_fsync = os.fsync

        def slow_fsync(fd: int) -> None:
            time.sleep(delay)
            real_fsync(fd)

        os.fsync = slow_fsync
    store = FileTokenStore(store_dir)
    manager = _manager(store)
    manager.client.client().close()  # warm whatever the first client costs, in the server only
    print("ready", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "run":
            break
        kill_after = float(parts[1]) / 1000  # negative: no kill, report how long a refresh takes
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the refreshing process
            code = 0
            try:
                manager.get_token(force_refresh=True)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        if kill_after >= 0:
            time.sleep(kill_after)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        elapsed_ms = (time.monotonic() - started) * 1000
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
            print("killed", flush=True)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            print(f"finished {elapsed_ms:.1f}", flush=True)
        else:
            print(f"failed {status}", flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "get":
        _get(sys.argv[2], int(sys.argv[3]))
    elif mode == "variable":
        _variable(sys.argv[2])
    elif mode == "forkserver":
        _forkserver(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
