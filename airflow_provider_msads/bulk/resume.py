"""The DownloadRequestId a retry of the Bulk task resumes, per account, sealed like the report's.

A retry after a worker crash (or a failed file download, or a timeout) would otherwise submit
every account again: Microsoft counts pending Bulk requests (4204 NoMoreCallsPermittedForTheTimePeriod
asks to wait up to 15 minutes), and a big account's file is built again from scratch. So each
account's request id is saved the moment it is submitted, in an Airflow Variable per task instance
and account, sealed with :class:`~airflow_provider_msads.reporting.resume.ResumeSeal` under its own
key purpose: whoever may write Variables cannot make the task follow a download of their choosing.
The seal covers the request body (account, entities, data scope and the ``LastSyncTimeInUTC`` it
was sent with), when it was submitted, and the try that wrote it: a try opens only the previous
try's seal and seals it again as its own, so an older seal written back does not open.

Microsoft keeps a DownloadRequestId "valid for a maximum of two days"
(DownloadCampaignsByAccountIds); a seal older than that less :data:`MARGIN` does not open and the
retry submits afresh. No Airflow here: the operator reads and writes the Variables.
"""

from __future__ import annotations

import hashlib
import json

from airflow_provider_msads.reporting.resume import ResumeSeal, fingerprint

__all__ = ["BULK_RESUME_MAX_AGE", "MARGIN", "PURPOSE", "STATE_VARIABLE_PREFIX", "fingerprint", "resume_key", "seal"]

PURPOSE = b"airflow-provider-msads/bulk-resume/v1"
#: Prefix of the Airflow Variables holding a sealed DownloadRequestId per task instance and account.
STATE_VARIABLE_PREFIX = "msads_bulk_request__"
#: Microsoft: a DownloadRequestId is "valid for a maximum of two days" (DownloadCampaignsByAccountIds).
ID_LIFETIME = 2 * 24 * 3600.0
#: Ours: time left for a resumed download to finish being polled and fetched.
MARGIN = 2 * 3600.0
BULK_RESUME_MAX_AGE = ID_LIFETIME - MARGIN


def resume_key(dag_id: str, run_id: str, task_id: str, map_index: int, conn_id: str, account_id: str) -> str:
    """The Variable name for one task instance's request of one account (a retry keeps all five)."""
    ident = json.dumps([dag_id, run_id, task_id, int(map_index), conn_id, str(account_id)])
    return STATE_VARIABLE_PREFIX + hashlib.sha256(ident.encode()).hexdigest()[:32]


def seal(client_secret: str, conn_id: str, client_id: str, key: str) -> ResumeSeal:
    """The seal for one account's saved request id (its own purpose: no report seal opens here)."""
    return ResumeSeal(client_secret, conn_id, client_id, key, purpose=PURPOSE)
