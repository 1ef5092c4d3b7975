"""A report's resume seal opens only in the try after the one that wrote it (issue 25 item 5):
an older seal for the same arguments, kept by someone who may write Variables and written back
within the two days, is refused."""

from __future__ import annotations

from airflow_provider_msads.reporting.resume import ResumeSeal, fingerprint

FP = fingerprint({"Type": "CampaignPerformanceReportRequest"}, "msads_default")


def _seal() -> ResumeSeal:
    return ResumeSeal("the client secret", "msads_default", "client-id", "state-key")


def test_only_the_previous_tries_seal_opens():
    seal = _seal()
    first = seal.seal("111", FP, now=1000.0, try_number=1)
    state, why = seal.open(first, FP, now=2000.0, try_number=2)
    assert state is not None and state.request_id == "111" and state.try_number == 1 and why == "ok"
    # Try 2 resumed it and sealed it again under its own number, keeping the submit time.
    second = seal.seal(state.request_id, FP, now=state.submitted_at, try_number=2)
    assert seal.open(second, FP, now=3000.0, try_number=3)[0] == state.__class__("111", 1000.0, 2)
    # Try 1's seal, written back at try 3: an older seal, refused.
    state, why = seal.open(first, FP, now=3000.0, try_number=3)
    assert state is None and "written by try 1, not by the previous try (2)" in why
    # Nor does a seal open in its own try, or in an earlier one (a number that went back).
    assert seal.open(second, FP, now=3000.0, try_number=2)[0] is None
    assert seal.open(second, FP, now=3000.0, try_number=1)[0] is None


def test_a_seal_that_names_no_try_does_not_open_for_a_try():
    seal = _seal()
    unnumbered = seal.seal("111", FP, now=1000.0)
    state, why = seal.open(unnumbered, FP, now=2000.0, try_number=2)
    assert state is None and "names no try" in why
    # The try is under the seal: changing it breaks the MAC.
    numbered = seal.seal("111", FP, now=1000.0, try_number=1)
    tampered = numbered.replace('\\"try\\":1', '\\"try\\":2')
    assert tampered != numbered
    assert "seal does not match" in seal.open(tampered, FP, now=2000.0, try_number=3)[1]
