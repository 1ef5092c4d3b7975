"""The bounded masker for tokens learnt at run time (``_masking``, issue 21), against Airflow's real masker."""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterator

import pytest

from airflow_provider_msads.tokens import masking as _masking
from airflow_provider_msads.tokens.masking import LIVE_TOKENS, LiveTokens, mask_token


def _token(n: int = 1400) -> str:
    return "EwA" + secrets.token_urlsafe(n)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    LIVE_TOKENS.clear()
    yield
    LIVE_TOKENS.clear()


def _refuse(token: str) -> None:
    raise AssertionError("fell back to Airflow's mask_secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_live_tokens_redact_every_occurrence_and_skip_short_values():
    tokens = LiveTokens()
    a, b = _token(), _token()
    assert tokens.add(a) and tokens.add(b)
    assert not tokens.add("short")
    assert tokens.redact(f"x {a} y {b} {a}") == "x *** y *** ***"
    assert tokens.redact("short and sweet") == "short and sweet"


def test_a_token_containing_another_is_replaced_whole():
    tokens = LiveTokens()
    inner = _token(20)
    outer = inner + "tail-of-a-longer-token"
    tokens.add(inner)
    tokens.add(outer)
    assert tokens.redact(f"[{outer}]") == "[***]"


def test_the_set_is_bounded_in_count_and_age_and_a_token_seen_again_stays():
    clock = Clock()
    tokens = LiveTokens(max_tokens=3, retention=100, clock=clock)
    first, *rest = [_token(30) for _ in range(4)]
    tokens.add(first)
    tokens.add(rest[0])
    tokens.add(rest[1])
    tokens.add(first)  # seen again (the newest refresh token on every use): newest now
    tokens.add(rest[2])
    assert len(tokens) == 3
    assert first in tokens and rest[0] not in tokens
    clock.now += 101
    fresh = _token(30)
    tokens.add(fresh)
    assert len(tokens) == 1 and fresh in tokens


def test_airflow_redact_masks_the_token_without_adding_a_pattern():
    from airflow.providers.common.compat.sdk import redact

    before = [len(m.patterns) for m in _masking.airflow_maskers()]
    token = _token()
    mask_token(token, _refuse)
    assert [len(m.patterns) for m in _masking.airflow_maskers()] == before
    assert token not in str(redact(f"Authorization: Bearer {token}"))
    assert token not in json.dumps(redact({"nested": [{"value": token}]}))


def test_airflow_own_masking_still_works_beside_the_tokens():
    from airflow.providers.common.compat.sdk import mask_secret, redact

    token = _token()
    mask_token(token, _refuse)
    mask_secret("a-connection-password-42")
    text = str(redact(f"pw=a-connection-password-42 token={token}"))
    assert text == "pw=*** token=***"


def test_a_reset_of_airflow_masker_keeps_the_live_tokens_masked():
    from _support.airflow_compat import reset_secrets_masker
    from airflow.providers.common.compat.sdk import redact

    token = _token()
    mask_token(token, _refuse)
    reset_secrets_masker()
    assert token not in str(redact(token))


def test_the_logging_filter_redacts_records_and_exceptions():
    masker = _masking.airflow_maskers()[0]
    token = _token()
    mask_token(token, _refuse)
    enabled = type(masker).is_log_masking_enabled() if hasattr(type(masker), "is_log_masking_enabled") else True
    if hasattr(type(masker), "enable_log_masking"):
        type(masker).enable_log_masking()
    from airflow import settings

    # Airflow 2: log masking is switched on by `airflow tasks run` (settings.MASK_SECRETS_IN_LOGS).
    was_on = getattr(settings, "MASK_SECRETS_IN_LOGS", None)
    if was_on is not None:
        settings.MASK_SECRETS_IN_LOGS = True
    try:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.addFilter(masker)
        logger = logging.getLogger("msads.test.masking")
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.debug("token %s", token)
        try:
            raise RuntimeError(f"failed with {token}")
        except RuntimeError:
            logger.exception("boom")
        logger.removeHandler(handler)
    finally:
        if not enabled and hasattr(type(masker), "disable_log_masking"):
            type(masker).disable_log_masking()
        if was_on is not None:
            settings.MASK_SECRETS_IN_LOGS = was_on
    output = stream.getvalue()
    assert "token ***" in output and "failed with ***" in output
    assert token not in output


def test_structlog_chains_get_the_processor_before_the_renderer():
    structlog = pytest.importorskip("structlog")
    saved = structlog.get_config()
    out = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=True,
    )
    try:
        logger = structlog.get_logger("msads.test")
        logger.info("warm", n=1)  # cached before the token is known
        token = _token()
        mask_token(token, _refuse)
        mask_token(_token(), _refuse)  # idempotent: one processor in the chain
        logger.info("event", value=f"Bearer {token}", nested={"t": [token]})
        chain = structlog.get_config()["processors"]
        assert isinstance(chain[-1], _masking._RedactThenRender) and len(chain) == 2
        assert not isinstance(chain[-1].renderer, _masking._RedactThenRender)
    finally:
        structlog.configure(**saved)
    assert token not in out.getvalue() and "Bearer ***" in out.getvalue()


def test_a_process_that_sends_logs_to_a_supervisor_needs_a_structlog_chain(monkeypatch: pytest.MonkeyPatch):
    """Such a process (Airflow 3 task or trigger runner) does not redact: the provider must, or fall back."""
    monkeypatch.setattr(_masking, "sends_logs_to_supervisor", lambda: True)
    monkeypatch.setattr(_masking, "_structlog_chains", lambda: iter(()))
    fallen: list[str] = []
    token = _token()
    mask_token(token, fallen.append)
    assert fallen == [token]


def test_without_an_airflow_masker_the_token_goes_to_airflow_mask_secret(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(_masking, "airflow_maskers", lambda: [])
    fallen: list[str] = []
    token = _token()
    mask_token(token, fallen.append)
    assert fallen == [token]


def test_msads_masker_airflow_is_the_way_back(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MSADS_MASKER", "airflow")
    fallen: list[str] = []
    token = _token()
    mask_token(token, fallen.append)
    assert fallen == [token] and token not in LIVE_TOKENS


def test_mask_runtime_secret_uses_the_bounded_set():
    from airflow_provider_msads.tokens.masking import mask_runtime_secret

    before = [len(m.patterns) for m in _masking.airflow_maskers()]
    token = _token()
    mask_runtime_secret(token)
    assert token in LIVE_TOKENS
    assert [len(m.patterns) for m in _masking.airflow_maskers()] == before


def test_airflow_compiles_its_pattern_once_on_the_next_redaction():
    """Many secrets added between two log lines (50 connections read at once) cost one compilation."""
    from airflow.providers.common.compat.sdk import mask_secret, redact

    _masking.prepare()
    values = [f"connection-secret-{n}-{secrets.token_hex(8)}" for n in range(5)]
    for value in values:
        mask_secret(value)
    if not any("re" in type(m).add_mask.__globals__ for m in _masking.airflow_maskers()):
        pytest.skip("Airflow 2.11 compiles its pattern with google-re2, not re: nothing to defer there")
    pending = [m.__dict__.get("_msads_pattern") for m in _masking.airflow_maskers()]
    lazy = [p for p in pending if isinstance(p, _masking._LazyPattern)]
    assert lazy and all(p._compiled is None for p in lazy)  # nothing compiled yet
    assert str(redact(" ".join(values))) == " ".join(["***"] * len(values))
