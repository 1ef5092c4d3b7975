"""What MicrosoftAdsBulkDownloadOperator keeps between runs and tries, in sealed Airflow Variables.

* **Delta state**: the Account row's Sync Time of each account's last download, per task,
  connection, account and entity set (:mod:`airflow_provider_msads.bulk.state`), written only
  after every file was published.
* **Resume state**: each account's DownloadRequestId, per task instance and account, sealed as soon
  as it is submitted and bound to the try (:mod:`airflow_provider_msads.bulk.resume`); deleted
  once the files are written.

Kept apart from the operator's submit/wait/split logic; may import the core and compat (the shell's
rules in docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook


def variables() -> Any:
    """Airflow's Variable API of this Airflow version (imported when first used)."""
    from airflow_provider_msads.compat.versions import variable_api

    return variable_api()


@dataclass(frozen=True)
class BulkRun:
    """What one run (or one return from the triggerer) works with, passed whole rather than as the
    same five arguments to every step. ``plan`` (account -> ``request_id`` and ``last_sync``) is the
    one part the steps change: a request id once submitted or resumed, ``last_sync`` dropped on 3603.
    """

    context: Context
    hook: MicrosoftAdsHook
    entities: list[str]
    scope: list[str]
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)


class BulkStateMixin:
    """Sealed Sync Times and resumable request ids (see the module doc)."""

    # Set by the operator.
    msads_conn_id: str
    log: Any

    def _seal(self, hook: MicrosoftAdsHook, key: str) -> Any:
        from airflow_provider_msads.bulk.state import SyncSeal

        creds = hook.credentials
        return SyncSeal(creds.client_secret, self.msads_conn_id, creds.client_id, key)

    def _state(self, context: Context, account: str, entities: list[str]) -> str:
        from airflow_provider_msads.bulk.state import state_key

        ti = context["ti"]
        return state_key(ti.dag_id, ti.task_id, self.msads_conn_id, account, entities)

    def _saved_sync(self, run: BulkRun, account: str) -> Any:
        from airflow_provider_msads.bulk.state import fingerprint

        key = self._state(run.context, account, run.entities)
        try:
            saved = variables().get(key, None)
        except Exception:  # unreadable state: a full download, never a guess
            self.log.warning("Could not read the saved Sync Time of account %s; downloading in full.", account)
            return None
        when, why = self._seal(run.hook, key).open(
            saved, fingerprint(self.msads_conn_id, account, run.entities, run.scope)
        )
        if when is None and saved:
            self.log.warning("Account %s: not using the saved Sync Time (%s); downloading in full.", account, why)
        return when

    def _save_sync(self, run: BulkRun, account: str, sync_time: str | None) -> None:
        from airflow_provider_msads.bulk.state import fingerprint

        if not sync_time:
            self.log.warning("Account %s: the file had no Account row Sync Time; the next run is full.", account)
            return
        key = self._state(run.context, account, run.entities)
        try:
            sealed = self._seal(run.hook, key).seal(
                sync_time, fingerprint(self.msads_conn_id, account, run.entities, run.scope)
            )
            variables().set(
                key,
                sealed,
                description="airflow-provider-msads: the Bulk Sync Time the next delta download starts from, sealed.",
            )
        except Exception:  # without it the next run is full: slower, never wrong
            self.log.warning("Could not save the Sync Time of account %s; the next run is full.", account)

    # -- resume state (a retry follows the requests an earlier try submitted) --------------

    def _resume_key(self, context: Context, account: str) -> str:
        from airflow_provider_msads.bulk.resume import resume_key

        ti = context["ti"]
        return resume_key(
            ti.dag_id, ti.run_id, ti.task_id, int(getattr(ti, "map_index", -1)), self.msads_conn_id, account
        )

    def _resume_seal(self, hook: MicrosoftAdsHook, key: str) -> Any:
        from airflow_provider_msads.bulk.resume import seal

        creds = hook.credentials
        return seal(creds.client_secret, self.msads_conn_id, creds.client_id, key)

    @staticmethod
    def _try_number(context: Context) -> int:
        return int(getattr(context["ti"], "try_number", 1) or 1)

    @staticmethod
    def _account_request(run: BulkRun, account: str) -> dict[str, Any]:
        """The account's Bulk request body, as submitted and as fingerprinted for resuming."""
        import datetime

        from airflow_provider_msads.bulk.request import build_account_request

        last = run.plan[account].get("last_sync")
        when = datetime.datetime.fromisoformat(last) if last else None
        return build_account_request(account, run.entities, data_scope=run.scope, last_sync=when)

    def _request_fingerprint(self, run: BulkRun, account: str) -> str:
        from airflow_provider_msads.bulk.resume import fingerprint

        return fingerprint(self._account_request(run, account), self.msads_conn_id)

    def _resume(self, run: BulkRun) -> None:
        """Take each account's request id the previous try saved (and seal it again as this try's)."""
        from airflow_provider_msads.bulk.resume import BULK_RESUME_MAX_AGE

        context = run.context
        if self._try_number(context) <= 1:
            return
        resumed = 0
        for account, info in run.plan.items():
            key = self._resume_key(context, account)
            try:
                saved = variables().get(key, None)
            except Exception:  # unreadable: submit again, never a guess
                self.log.warning("Could not read the saved Bulk request of account %s; submitting anew.", account)
                continue
            if not saved:
                continue
            fp = self._request_fingerprint(run, account)
            state, why = self._resume_seal(run.hook, key).open(
                saved, fp, try_number=self._try_number(context), max_age=BULK_RESUME_MAX_AGE
            )
            if state is None:
                self.log.warning("Account %s: not resuming the saved Bulk request (%s); submitting anew.", account, why)
                continue
            info["request_id"] = state.request_id
            self._remember(run, account, submitted_at=state.submitted_at)
            resumed += 1
        if resumed:
            self.log.info("Resuming %d Bulk download(s) submitted by the previous try.", resumed)

    def _remember(self, run: BulkRun, account: str, *, submitted_at: float | None = None) -> None:
        info = run.plan[account]
        key = self._resume_key(run.context, account)
        try:
            sealed = self._resume_seal(run.hook, key).seal(
                str(info["request_id"]),
                self._request_fingerprint(run, account),
                now=submitted_at,
                try_number=self._try_number(run.context),
            )
            variables().set(
                key,
                sealed,
                description="airflow-provider-msads: the Bulk download a retry of this task resumes, sealed "
                "(deleted when the files are written).",
            )
        except Exception:  # resuming is an optimisation: without it a retry submits again
            self.log.warning("Could not save Bulk request %s for retries to resume.", info.get("request_id"))

    def _forget(self, context: Context, accounts: Any) -> None:
        for account in accounts:
            try:
                variables().delete(self._resume_key(context, str(account)))
            except Exception:
                self.log.debug("Could not delete the saved Bulk request of account %s.", account)

    @staticmethod
    def _dead(err: Exception) -> bool:
        """An error after which a saved request id must not be followed again (Microsoft asks for a
        new download, or the id is unknown); a timeout or a failed file fetch keeps it."""
        from airflow_provider_msads.bulk.service import BulkDownloadFailedError, BulkError, FullSyncRequiredError
        from airflow_provider_msads.errors import MicrosoftAdsError

        if isinstance(err, (BulkDownloadFailedError, FullSyncRequiredError)):
            return True
        if isinstance(err, BulkError) and 3205 in (err.codes or []):
            return True
        return isinstance(err, MicrosoftAdsError) and not err.retryable
