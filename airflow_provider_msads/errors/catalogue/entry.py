"""One catalogue entry, and the steps of the credentials guide that remedies point to.

The vocabulary every per-service catalogue of this folder is written in. Imports nothing of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Steps of the credentials guide that remedies point to.
STEP_APP = "Step 1 (register the app: account types, redirect URI)"
STEP_SECRET = "Step 2 (client ID and client secret)"
STEP_IDS = "Step 3 (account and customer id from the Microsoft Advertising URL)"
STEP_DEVTOKEN = "Step 4 (developer token)"
STEP_AUTHORIZE = "Steps 5-6 (authorize again and get a new refresh token; `msads-authorize` does both)"

#: The remedy of a code only a bug of ours can cause (Reporting and Bulk).
OPERATOR_BUG = "Please report it with the tracking id: the operator builds this part of the request."


@dataclass(frozen=True)
class CatalogueEntry:
    """What a Microsoft code means for the person who owns the connection.

    ``code`` is None for an OAuth ``error`` name that comes without an AADSTS code (the authorize
    redirect's ``?error=``); ``name`` is then the key.
    """

    code: int | None
    name: str
    meaning: str
    remedy: str
    field: str | None = None
    step: str | None = None
    retryable: bool = False
    #: Retry at most this many times even though the code is not transient in general.
    retry_once: bool = False
    #: The refresh token is dead: only a new authorization helps.
    reauthorize: bool = False

    def advice(self) -> dict[str, Any]:
        """What an error explained by this entry carries (keywords of :class:`MicrosoftAdsError`)."""
        return {
            "field": self.field,
            "step": self.step,
            "remedy": self.remedy,
            "retryable": self.retryable,
            "retry_once": self.retry_once,
            "reauthorize": self.reauthorize,
        }
