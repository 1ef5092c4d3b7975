"""P4: health check of 50 connections at once, against one connection and against a loop.

Goal: checking 50 connections concurrently takes at most twice as long as checking one. The
emulator answers every request after 100 ms; one check is a forced refresh, GetUser and GetAccount
(three round trips). "Concurrently" is the triggerer's way: ``avalidate_credentials()`` of 50
hooks on one event loop. The loop is ``validate_credentials()`` one connection after the other.

Airflow's secrets masker recompiles one regex of *every* secret the process has masked whenever a
new one arrives; each check adds the connection's secrets and two new tokens. The masker is reset
before each measurement so that the three are comparable, and a diagnostic row shows the
concurrent run with the masker switched off, to separate the provider's own cost from it.

Every httpx client the provider builds makes its own verifying TLS context (``load_verify_locations``
of the CA bundle: 50-100 ms of CPU here) synchronously, on the event loop. The diagnostic rows
simulate the proposed fix, one verifying context per process, to show what it buys.

Run: ``python benchmarks/bench_p4_health_check.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from contextlib import contextmanager
from typing import Any

import _bench_common as common

from airflow_provider_msads.testing.emulator import MicrosoftAdsEmulator

LATENCY = 0.1


_MASKER_MODULES = ("airflow.sdk._shared.secrets_masker", "airflow._shared.secrets_masker")


def _masker_modules() -> list[Any]:
    """Airflow has two masker singletons (task SDK and core); connections and tokens use both."""
    import importlib

    modules = []
    for name in _MASKER_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    return modules


def _reset_masker() -> None:
    for module in _masker_modules():
        module.reset_secrets_masker()


@contextmanager
def _shared_tls_context():
    """The proposed fix, simulated: one verifying TLS context per process instead of one per client."""
    import httpx._transports.default as transport

    original = transport.create_ssl_context
    shared: dict[Any, Any] = {}

    def cached(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        if trust_env not in shared:
            shared[trust_env] = original(verify=True, trust_env=trust_env)
        return shared[trust_env]

    transport.create_ssl_context = cached
    try:
        yield
    finally:
        transport.create_ssl_context = original


@contextmanager
def _masker_off():
    classes = [module.SecretsMasker for module in _masker_modules()]
    originals = [cls.add_mask for cls in classes]
    for cls in classes:
        cls.add_mask = lambda self, secret, name=None: None
    try:
        yield
    finally:
        for cls, original in zip(classes, originals, strict=True):
            cls.add_mask = original


def _connections(emulator: MicrosoftAdsEmulator, prefix: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        conn_id = f"msads_{prefix}_{i}"
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = emulator.connection_uri_json()
        ids.append(conn_id)
    return ids


def _concurrent(conn_ids: list[str]) -> tuple[float, bool]:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    async def main() -> list[Any]:
        return await asyncio.gather(*(MicrosoftAdsHook(msads_conn_id=c).avalidate_credentials() for c in conn_ids))

    _reset_masker()
    started = time.perf_counter()
    reports = asyncio.run(main())
    return time.perf_counter() - started, all(r.ok for r in reports)


def _sequential(conn_ids: list[str]) -> tuple[float, bool]:
    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

    _reset_masker()
    started = time.perf_counter()
    reports = [MicrosoftAdsHook(msads_conn_id=c).validate_credentials() for c in conn_ids]
    return time.perf_counter() - started, all(r.ok for r in reports)


def run(quick: bool = False) -> dict[str, Any]:
    n = 3 if quick else 50
    repeats = 1 if quick else 3
    os.environ["MSADS_TOKEN_STORE"] = "file"
    os.environ["MSADS_TOKEN_STORE_DIR"] = tempfile.mkdtemp(prefix="msads-bench-p4-")
    try:
        with MicrosoftAdsEmulator() as emulator:
            _concurrent(_connections(emulator, "warm", 1))  # imports, first TLS context, first loop
            emulator.latency = LATENCY
            one = common.median(_concurrent(_connections(emulator, f"one{i}", 1))[0] for i in range(repeats))
            many, many_ok = _concurrent(_connections(emulator, "many", n))
            loop, loop_ok = _sequential(_connections(emulator, "loop", n))
            with _shared_tls_context():
                one_tls = common.median(_concurrent(_connections(emulator, f"onetls{i}", 1))[0] for i in range(repeats))
                many_tls, _ = _concurrent(_connections(emulator, "manytls", n))
                with _masker_off():
                    floor, _ = _concurrent(_connections(emulator, "floor", n))
            api_calls = emulator.counters["api"]
    finally:
        os.environ.pop("MSADS_TOKEN_STORE", None)
        for name in [k for k in os.environ if k.startswith("AIRFLOW_CONN_MSADS_")]:
            os.environ.pop(name)
    if not (many_ok and loop_ok):
        raise RuntimeError("a check failed against the emulator")
    ratio = many / one
    figures = {
        "connections": n,
        "latency_ms": LATENCY * 1000,
        "one_s": round(one, 3),
        "concurrent_s": round(many, 3),
        "one_shared_tls_s": round(one_tls, 3),
        "concurrent_shared_tls_s": round(many_tls, 3),
        "concurrent_shared_tls_masker_off_s": round(floor, 3),
        "sequential_s": round(loop, 3),
        "ratio_concurrent_to_one": round(ratio, 2),
        "goal_ratio": 2.0,
        "goal_met": ratio <= 2.0,
        "api_calls": api_calls,
    }
    common.report(
        f"P4 health check of {n} connections, {int(LATENCY * 1000)} ms per answer",
        [
            (f"one connection (median of {repeats})", f"{one:.2f} s"),
            (f"{n} connections concurrently (async)", f"{many:.2f} s  = {ratio:.1f} x one  (goal: <= 2 x)"),
            (f"{n} connections in a sequential loop", f"{loop:.2f} s  = {loop / one:.1f} x one"),
            ("diagnostic: one TLS context per process", ""),
            (f"  one connection (median of {repeats})", f"{one_tls:.2f} s"),
            (f"  {n} concurrently", f"{many_tls:.2f} s  = {many_tls / one_tls:.1f} x one"),
            (f"  {n} concurrently, Airflow masker off", f"{floor:.2f} s  = {floor / one_tls:.1f} x one"),
        ],
    )
    return figures


if __name__ == "__main__":
    common.main(run)
