"""Child processes of the benchmarks (run as a script).

``p1 CONN_ID CALLS``  print ``ready``, wait for a line on stdin, call
    ``MicrosoftAdsHook.get_access_token()`` CALLS times; print JSON {distinct tokens, seconds}.
``p2``  import ``airflow.sdk``, then the operator and sensor modules; print JSON of both times and
    whether the provider modules pulled in httpx or cryptography.
``p3 CONN_ID``  the first ``get_access_token()`` of a fresh process whose token store already holds
    a fresh token, then a second one; print JSON of both times and of the connection read.
"""

from __future__ import annotations

import json
import sys
import time


def p1(conn_id: str, calls: int) -> None:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    hook = MicrosoftAdsHook(msads_conn_id=conn_id)
    _ = hook.credentials, hook.token_store  # read the connection before the start signal
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    tokens = {hook.get_access_token() for _ in range(calls)}
    print(json.dumps({"distinct_tokens": len(tokens), "seconds": time.perf_counter() - started}), flush=True)


def p2() -> None:
    started = time.perf_counter()
    import airflow.sdk  # noqa: F401

    sdk = time.perf_counter() - started
    before = set(sys.modules)
    started = time.perf_counter()
    import airflow_provider_msads.operators.msads
    import airflow_provider_msads.sensors.msads  # noqa: F401

    provider = time.perf_counter() - started
    added = set(sys.modules) - before
    heavy = sorted({name.split(".")[0] for name in added} & {"httpx", "cryptography", "httpcore", "h11", "anyio"})
    print(json.dumps({"sdk": sdk, "provider": provider, "modules_added": len(added), "heavy": heavy}), flush=True)


def p3(conn_id: str) -> None:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    hook = MicrosoftAdsHook(msads_conn_id=conn_id)
    started = time.perf_counter()
    first = hook.get_access_token()
    first_call = time.perf_counter() - started
    started = time.perf_counter()
    second = hook.get_access_token()
    second_call = time.perf_counter() - started
    # The part that is the token core's: a new hook, connection already parsed, cold process cache.
    from airflow_provider_msads.auth import clear_process_cache

    clear_process_cache()
    fresh = MicrosoftAdsHook(msads_conn_id=conn_id)
    _ = fresh.credentials
    started = time.perf_counter()
    third = fresh.get_access_token()
    core = time.perf_counter() - started
    assert first == second == third
    print(json.dumps({"first_call": first_call, "second_call": second_call, "store_read": core}), flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "p1":
        p1(sys.argv[2], int(sys.argv[3]))
    elif mode == "p2":
        p2()
    elif mode == "p3":
        p3(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
