"""MicrosoftAdsBulkDownloadOperator: the advertiser's entities (campaigns, ad groups, keywords, ads…)
through Bulk v13, one file per record type, full once and then deltas.

Thin like the report operator: ``__init__`` stores, the core (:mod:`airflow_provider_msads.bulk`)
builds requests, follows Microsoft's answers and splits the file, the hook does the HTTP. What is
Airflow's own concern here:

* **Delta state.** The Account row's Sync Time of each account's last download is kept in an
  Airflow Variable per task, connection, account and entity set, sealed under the connection's
  client secret (:mod:`~airflow_provider_msads.bulk.state`): a forged or copied value opens as
  nothing, and the download is then full. It is written only after every file was published, so a
  failed run never advances it.
* **Resuming.** Each account's DownloadRequestId is sealed in a Variable per task instance and
  account as soon as it is submitted (:mod:`~airflow_provider_msads.bulk.resume`); a retry polls
  it instead of submitting again, so a crash after submitting costs no second request.
* **The Asset event** says, per account, whether its download was full or a delta: a loader
  replaces its table after a full download and merges on ``Id`` after a delta (deleted entities
  come as rows with Status ``Deleted``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator, conf

from airflow_provider_msads.operators._bulk_state import BulkRun, BulkStateMixin
from airflow_provider_msads.operators._task import raise_for_task, task_hook

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

OUTPUT_FORMATS = ("csv", "parquet")
ALL_ACCOUNTS = "all"


class MicrosoftAdsBulkDownloadOperator(BulkStateMixin, BaseOperator):
    """Download entities with Bulk v13 into ``destination``, one file per record type.

    :param entities: Microsoft's ``DownloadEntity`` names, e.g. ``["Campaigns", "AdGroups", "Keywords",
        "Ads"]`` (learn.microsoft.com/advertising/bulk-service/downloadentity).
    :param destination: a folder, local path or ObjectStoragePath URL (templated). Each file
        (``campaign.csv``, ``ad_group.csv``, ``keyword.csv``, ``responsive_search_ad.csv``,
        ``account.csv``…) appears under its name only when complete.
    :param account_ids: default: the connection's Account ID; a list of ids; ``"all"``: every account
        ``hook.list_accounts()`` returns. One Bulk request per account (Microsoft allows one).
    :param output_format: ``"csv"`` (default) or ``"parquet"`` (typed; extra ``[parquet]``).
    :param delta: download only what changed since this task's last download of the same
        connection, account and entities (full when nothing is saved, the saved time is 30 days old
        or more, or Microsoft answers FailedFullSyncRequired).
    :param data_scope: ``EntityData`` (default), ``QualityScoreData`` and/or ``BidSuggestionsData``;
        the last two are served only in full downloads.
    :param deferrable: submit every account's download, then wait in the triggerer
        (:class:`~airflow_provider_msads.triggers.bulk.MicrosoftAdsBulkDownloadTrigger`); the worker
        then asks for fresh links (they live five minutes), downloads and splits.
    :param poll_interval: seconds between status calls; default Microsoft's advice (15 s, a minute
        once a download has run five minutes).
    :param timeout: seconds one account's download may take before the task fails (for retry).
    :param max_concurrency: accounts submitted, and downloaded, at the same time: Microsoft limits
        pending Bulk requests (4204), so keep it small. Every account is submitted before any wait.
    :param asset: as for the report operator: a URI or Asset; default the destination folder; False: none.
    """

    template_fields: Sequence[str] = ("msads_conn_id", "destination", "account_ids", "entities")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        entities: Sequence[str],
        destination: str,
        msads_conn_id: str = "msads_default",
        account_ids: Sequence[str | int] | str | None = None,
        output_format: str = "csv",
        delta: bool = True,
        data_scope: Sequence[str] | str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | None = None,
        timeout: float = 3600.0,
        asset: Any = None,
        max_concurrency: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.entities = entities
        self.destination = destination
        self.msads_conn_id = msads_conn_id
        self.account_ids = account_ids
        self.output_format = output_format
        self.delta = delta
        self.data_scope = data_scope
        self.deferrable = deferrable
        self.poll_interval = None if poll_interval is None else float(poll_interval)
        self.timeout = float(timeout)
        self.asset = asset
        self.max_concurrency = max(1, int(max_concurrency))
        self.entities_asset_uri: str | None = None
        self._declare_asset()

    # -- building ----------------------------------------------------------------------------

    def _declare_asset(self) -> None:
        from airflow_provider_msads.compat.assets import report_asset

        if not isinstance(self.destination, str) and self.asset in (None, False):
            return
        folder = self.destination.rstrip("/") + "/" if isinstance(self.destination, str) else ""
        outlet = report_asset(self.asset, folder)
        if outlet is None:
            return
        self.entities_asset_uri = str(outlet.uri)
        if not any(getattr(o, "uri", None) == outlet.uri for o in self.outlets or ()):
            self.outlets = [*(self.outlets or []), outlet]

    # -- running -----------------------------------------------------------------------------

    def _hook(self) -> MicrosoftAdsHook:
        return task_hook(self.msads_conn_id)

    def _raise(self, err: Exception) -> NoReturn:
        raise_for_task(err)

    def _check(self) -> tuple[list[str], list[str]]:
        from airflow_provider_msads.bulk.request import check_data_scope, check_entities
        from airflow_provider_msads.errors import ArgumentError

        if self.output_format not in OUTPUT_FORMATS:
            raise ArgumentError(
                f"`output_format` is {str(self.output_format)[:20]!r}.",
                field="output_format",
                remedy='Use "csv" (the default) or "parquet" (typed; extra [parquet]).',
            )
        if self.output_format == "parquet":
            from airflow_provider_msads.reporting.parquet import require_pyarrow

            require_pyarrow()
        return check_entities(self.entities), check_data_scope(self.data_scope)

    def _check_destination(self) -> None:
        from airflow_provider_msads.bulk.split import join_destination
        from airflow_provider_msads.errors import ArgumentError
        from airflow_provider_msads.reporting.destinations import check_destination, is_local, local_path

        if not isinstance(self.destination, str) or not self.destination.strip():
            raise ArgumentError(
                "`destination` is empty.", field="destination", remedy="Give a folder path or an object-store URL."
            )
        if is_local(self.destination):
            folder = local_path(self.destination)
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise ArgumentError(
                    f"`destination` {self.destination!r} is a file; Bulk downloads write a folder of files.",
                    field="destination",
                    remedy="Give a folder: campaign.csv, keyword.csv, … are written inside it.",
                )
        check_destination(join_destination(self.destination, f"account.{self.output_format}"))

    def _accounts(self, hook: MicrosoftAdsHook) -> list[str]:
        from airflow_provider_msads.bulk.request import check_account_id
        from airflow_provider_msads.errors import ArgumentError

        ids = self.account_ids
        if ids is None:
            return [check_account_id(hook.credentials.account_id, "account_id")]
        if isinstance(ids, str) and ids.strip().lower() == ALL_ACCOUNTS:
            return [check_account_id(a.id) for a in hook.list_accounts()]
        if isinstance(ids, (str, int)):
            ids = [part for part in str(ids).split(",") if part.strip()]
        accounts = list(dict.fromkeys(check_account_id(a) for a in ids))
        if not accounts:
            raise ArgumentError(
                "`account_ids` is an empty list; it is never widened to the connection's account.",
                field="account_ids",
                remedy="Leave account_ids unset for the connection's account, give ids, or 'all'.",
            )
        return accounts

    # -- executing ---------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_msads.errors import MicrosoftAdsError

        hook = self._hook()
        try:
            entities, scope = self._check()
            self._check_destination()
            accounts = self._accounts(hook)
        except MicrosoftAdsError as err:
            self._raise(err)
        run = BulkRun(context, hook, entities, scope)
        for account in accounts:
            last = self._saved_sync(run, account) if self.delta else None
            self.log.info(
                "Account %s: %s download of %s.",
                account,
                f"delta since {last:%Y-%m-%d %H:%M:%S} UTC" if last else "full",
                ", ".join(entities),
            )
            run.plan[account] = {"last_sync": last.isoformat() if last else None, "request_id": None}
        self._resume(run)
        self._submit_all(run)
        if self.deferrable and any(info["request_id"] for info in run.plan.values()):
            import time

            from airflow_provider_msads.triggers.bulk import MicrosoftAdsBulkDownloadTrigger

            self.defer(
                trigger=MicrosoftAdsBulkDownloadTrigger(
                    accounts=run.plan,
                    msads_conn_id=self.msads_conn_id,
                    poll_interval=self.poll_interval,
                    timeout=self.timeout,
                    started_at=time.time(),
                ),
                method_name="execute_complete",
            )
        return self._download_all(run)

    def _submit_all(self, run: BulkRun) -> None:
        """Submit every account not resumed, ``max_concurrency`` at a time, sealing each id for a retry
        as soon as its group is answered (before anything is waited for).

        Deferrable or not, the whole set is then waited for together. An account that needs more
        than one request (3207) or a full download after all (3603) is left to the download step.
        """
        import asyncio

        from airflow_provider_msads.errors import MicrosoftAdsError

        todo = [a for a, info in run.plan.items() if not info.get("request_id")]
        for start in range(0, len(todo), self.max_concurrency):
            group = todo[start : start + self.max_concurrency]
            if len(group) == 1:
                answers: list[Any] = []
                try:
                    answers.append(run.hook.submit_bulk_download(self._account_request(run, group[0])))
                except MicrosoftAdsError as err:
                    answers.append(err)
            else:
                answers = asyncio.run(self._submit_group(run, group))
            failure: BaseException | None = None
            for account, answer in zip(group, answers, strict=True):
                info = run.plan[account]
                if isinstance(answer, str):
                    info["request_id"] = answer
                    self._remember(run, account)
                elif not self._left_to_download(account, info, answer):
                    failure = failure or answer
            if failure is not None:
                if isinstance(failure, MicrosoftAdsError):
                    self._raise(failure)
                raise failure

    async def _submit_group(self, run: BulkRun, group: list[str]) -> list[Any]:
        import asyncio

        return list(
            await asyncio.gather(
                *(run.hook.asubmit_bulk_download(self._account_request(run, a)) for a in group),
                return_exceptions=True,
            )
        )

    def _left_to_download(self, account: str, info: dict[str, Any], err: BaseException) -> bool:
        """3207 / 3603 at submit: the download step handles the account (by campaigns, in full)."""
        from airflow_provider_msads.bulk.service import AccountTooBigError, FullSyncRequiredError

        if not isinstance(err, (AccountTooBigError, FullSyncRequiredError)):
            return False
        if isinstance(err, FullSyncRequiredError):
            info["last_sync"] = None  # 3603: downloaded in full
        self.log.info("Account %s: error %s at submit; left to the download step.", account, err.code)
        return True

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Back from the triggerer: everything needed is in ``event`` (request ids, last sync times)."""
        from airflow_provider_msads.errors import MicrosoftAdsError

        kind = event.get("status")
        if kind == "timeout":
            raise AirflowException(
                f"Bulk downloads not ready after {float(event.get('waited', 0)):.0f} s (timeout={self.timeout:.0f} s); "
                "raise `timeout`: big accounts take long."
            )
        if kind == "failed":
            message = str(event.get("message") or "Waiting for the Bulk download failed.")
            if (event.get("error") or {}).get("retryable"):
                raise AirflowException(message)
            self._forget(context, event.get("accounts") or ())  # a dead id must not block every retry
            raise AirflowFailException(message)
        hook = self._hook()
        try:
            entities, scope = self._check()
        except MicrosoftAdsError as err:
            self._raise(err)
        plan = {str(a): dict(info) for a, info in (event.get("accounts") or {}).items()}
        return self._download_all(BulkRun(context, hook, entities, scope, plan))

    def _download_all(self, run: BulkRun) -> dict[str, Any]:
        """Each account's file (following a submitted request, or submitting), split; then publish."""

        from airflow_provider_msads.bulk.download import new_scratch
        from airflow_provider_msads.bulk.split import Splitter
        from airflow_provider_msads.errors import MicrosoftAdsError

        scratch = new_scratch()
        splitter = Splitter(scratch)
        context, plan, entities = run.context, run.plan, run.entities
        done: dict[str, Any] = {}
        try:
            try:
                if len(plan) == 1 or self.max_concurrency == 1:
                    for account, info in plan.items():
                        try:
                            done[account] = run.hook.download_entities(
                                account, entities, splitter, **self._download_args(info, run.scope)
                            )
                        except MicrosoftAdsError as err:
                            if self._dead(err):
                                self._forget(context, [account])
                            raise
                else:
                    import asyncio

                    dead: list[str] = []
                    try:
                        done.update(asyncio.run(self._download_concurrently(run, splitter, dead)))
                    finally:
                        self._forget(context, dead)  # outside the loop: Variables are blocking calls
            except MicrosoftAdsError as err:
                self._raise(err)
            try:
                files = self._publish(splitter, scratch)
            except MicrosoftAdsError as err:
                self._raise(err)
        finally:
            splitter.close()
            shutil.rmtree(scratch, ignore_errors=True)
        for account, result in done.items():
            self._save_sync(run, account, result.sync_time)
        self._forget(context, plan)  # the files are written: nothing left for a retry to resume
        outcome = {
            "files": files,
            "accounts": {account: result.to_dict() for account, result in done.items()},
            "entities": entities,
            "format": self.output_format,
            "destination": self.destination,
        }
        self._record_event(context, outcome)
        return outcome

    def _download_args(self, info: dict[str, Any], scope: list[str]) -> dict[str, Any]:
        import datetime

        return {
            "last_sync": datetime.datetime.fromisoformat(info["last_sync"]) if info.get("last_sync") else None,
            "data_scope": scope,
            "poll_interval": self.poll_interval,
            "timeout": self.timeout,
            "request_id": info.get("request_id") or None,
        }

    async def _download_concurrently(self, run: BulkRun, splitter: Any, dead: list[str]) -> dict[str, Any]:
        """Several accounts, ``max_concurrency`` at a time, on one event loop (the splitter takes one
        file at a time); the first failure cancels the others. An account whose saved request must
        not be resumed again is appended to ``dead``."""
        import asyncio

        from airflow_provider_msads.errors import MicrosoftAdsError

        gate = asyncio.Semaphore(self.max_concurrency)

        async def one(account: str, info: dict[str, Any]) -> tuple[str, Any]:
            async with gate:
                self.log.info("Account %s: downloading.", account)
                try:
                    result = await run.hook.adownload_entities(
                        account, run.entities, splitter, **self._download_args(info, run.scope)
                    )
                except MicrosoftAdsError as err:
                    if self._dead(err):
                        dead.append(account)
                    raise
                return account, result

        tasks = [asyncio.ensure_future(one(a, i)) for a, i in run.plan.items()]
        try:
            return dict(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _publish(self, splitter: Any, scratch: str) -> dict[str, dict[str, Any]]:
        from airflow_provider_msads.bulk.split import copy_csv, publish_files
        from airflow_provider_msads.reporting.destinations import publish_to_object_storage

        write = copy_csv
        if self.output_format == "parquet":
            from airflow_provider_msads.bulk.parquet import write_bulk_parquet

            write = write_bulk_parquet
        folder = tempfile.mkdtemp(prefix="out-", dir=scratch)
        return publish_files(
            splitter,
            self.destination,
            extension=self.output_format,
            write=write,
            publish=publish_to_object_storage,
            scratch=folder,
        )

    def _record_event(self, context: Context, outcome: dict[str, Any]) -> None:
        from airflow_provider_msads.compat.assets import record_event

        uri = self.entities_asset_uri
        outlet = next((o for o in self.outlets or () if uri and getattr(o, "uri", None) == uri), None)
        if outlet is None:
            return
        extra = {
            "files": outcome["files"],
            "accounts": {a: {"sync_time": r["sync_time"], "full": r["full"]} for a, r in outcome["accounts"].items()},
            "format": outcome["format"],
            "entities": outcome["entities"],
        }
        if record_event(context, outlet, extra):
            self.log.info("Asset event for %s: %d files.", uri, len(outcome["files"]))
