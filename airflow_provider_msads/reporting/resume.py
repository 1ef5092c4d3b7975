"""The saved ReportRequestId a retry resumes, sealed so that nobody else can choose it.

A retry of the report task polls the request an earlier try submitted (Microsoft keeps an id for
one day, and re-submitting on every retry never finishes in slow periods). The id sits in an
Airflow Variable, which more people may write than may read the connection: a plain value would
let them make the task download a report of *their* choosing (another account's rows, say) under
this task's name. So the state is sealed with an HMAC under a key derived from the connection's
client secret, which only the connection's holders know, and the seal covers everything that
decides what is resumed: the request id, when it was submitted (its age is bounded by the seal,
not by a value anyone could write), the fingerprint of the request (connection and ReportRequest)
and the task instance it belongs to (a seal copied from another task does not open here).

A seal also names the try that wrote it, and a try opens only the previous try's seal (the
operator seals again, under its own try, each time it resumes): Airflow's try number is the one
counter here nobody but Airflow moves, so a seal from an older try, kept and written back later
within the day, no longer opens; the retry then submits afresh.

No Airflow import: the operator reads and writes the Variable; this module only seals and opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: The envelope's version tag; anything else does not open.
RESUME_VERSION = "msads-resume-v1"
#: How long Microsoft keeps a ReportRequestId pollable (SubmitGenerateReport: "valid for a maximum
#: of one day"; an older guide said two), less an hour so a resumed report still has time to finish.
RESUME_MAX_AGE = 24 * 3600.0 - 3600.0


def fingerprint(request: Mapping[str, Any], conn_id: str) -> str:
    """Names the request: a retry resumes only a request built from the same arguments."""
    return hashlib.sha256(json.dumps([conn_id, request], sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class ResumeState:
    request_id: str
    submitted_at: float
    #: The try that wrote the seal (None in a seal written without one).
    try_number: int | None = None


class ResumeSeal:
    """Seals and opens the resume state of one task instance for one connection."""

    def __init__(
        self,
        client_secret: str,
        conn_id: str,
        client_id: str,
        state_key: str,
        *,
        purpose: bytes = b"airflow-provider-msads/report-resume/v1",
    ) -> None:
        # ``purpose`` separates keys per kind of state: a seal made for one (a report id) never
        # opens as another (a Bulk Sync Time), even under the same Variable name.
        self._key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=purpose,
            info=json.dumps([conn_id, client_id]).encode(),
        ).derive(client_secret.encode())
        self._state_key = state_key

    def _mac(self, body: str) -> str:
        digest = hmac.new(self._key, f"{self._state_key}\n{body}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def seal(
        self, request_id: str, fingerprint: str, *, now: float | None = None, try_number: int | None = None
    ) -> str:
        """The sealed state; ``now`` is when the request was submitted (kept when a resuming try seals
        it again), ``try_number`` the try writing it (see :meth:`open`)."""
        state: dict[str, Any] = {
            "request_id": str(request_id),
            "submitted_at": now if now is not None else time.time(),
            "fp": fingerprint,
        }
        if try_number is not None:
            state["try"] = int(try_number)
        body = json.dumps(state, separators=(",", ":"), sort_keys=True)
        return json.dumps({"v": RESUME_VERSION, "state": body, "mac": self._mac(body)}, separators=(",", ":"))

    def open(
        self,
        value: str | None,
        fingerprint: str,
        *,
        now: float | None = None,
        try_number: int | None = None,
        max_age: float = RESUME_MAX_AGE,
    ) -> tuple[ResumeState | None, str]:
        """The state when ``value`` is ours, for this request, and young enough; else None and why.

        With ``try_number`` (the try opening it), only a seal written by the previous try opens: an
        older try's seal written back (a replay) does not.
        """
        if not value:
            return None, "nothing saved"
        try:
            envelope = json.loads(value)
            body = envelope["state"]
            mac = envelope["mac"]
            if envelope.get("v") != RESUME_VERSION or not isinstance(body, str) or not isinstance(mac, str):
                return None, "not a sealed resume state"
        except (ValueError, TypeError, KeyError):
            return None, "not a sealed resume state"
        if not hmac.compare_digest(mac, self._mac(body)):
            return None, "its seal does not match this task and connection (written by someone else, or copied)"
        try:
            state = json.loads(body)
            request_id, submitted_at, saved_fp = str(state["request_id"]), float(state["submitted_at"]), state["fp"]
        except (ValueError, TypeError, KeyError):
            return None, "not a sealed resume state"
        if saved_fp != fingerprint:
            return None, "it was submitted for different arguments"
        sealed_try = state.get("try")
        if try_number is not None and (not isinstance(sealed_try, int) or sealed_try != try_number - 1):
            return None, (
                f"it was written by try {sealed_try}, not by the previous try ({try_number - 1}): an older state "
                "written back"
                if isinstance(sealed_try, int)
                else "it names no try (written by an older version)"
            )
        age = (now if now is not None else time.time()) - submitted_at
        if not 0 <= age <= max_age:
            why = "Microsoft keeps a report id one day" if max_age == RESUME_MAX_AGE else "too old to resume"
            return None, f"it is {age / 3600:.1f} h old ({why}; at most {max_age / 3600:.0f} h are used)"
        return ResumeState(
            request_id=request_id,
            submitted_at=submitted_at,
            try_number=sealed_try if isinstance(sealed_try, int) else None,
        ), "ok"
