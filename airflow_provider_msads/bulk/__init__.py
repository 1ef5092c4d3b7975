"""Bulk v13 entity downloads over REST, without Airflow (the operator and hook are the shell).

One module per step:

* :mod:`.request`: DownloadCampaignsByAccountIds / ByCampaignIds bodies, checked before sending;
* :mod:`.service`: submit and status calls as flows, and Microsoft's refusals explained;
* :mod:`.flow`: one account's download (delta or full, 3207 split, FailedFullSyncRequired, link renewal);
* :mod:`.download` and :mod:`.split`: the result file fetched without credentials and split per
  record type into files with stable columns (:mod:`._record_types`, generated from the SDK);
* :mod:`.state`: the sealed Sync Time the next delta sends.

May import: ``errors``, ``connection``, ``tokens``, ``compat``, and ``reporting`` (whose download,
destinations and resume seal Bulk reuses). No Airflow at import time.
"""

from __future__ import annotations
