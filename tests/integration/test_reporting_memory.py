"""A big report is streamed: the downloading process's memory does not grow with the report (issue 12).

The downloader runs in a fresh process (so earlier tests' allocations do not hide or inflate its
peak), against the emulator over a real socket; the emulator serves a report of about 150 MB of CSV
(about 60 MB zipped), generated on the fly. The goal for a 1 GB report is under 64 MB of peak RSS
growth; benchmark P5 measures the full 1 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook

ROWS = 2_000_000
_DOWNLOADER = """
import json, sys, zipfile, gzip, csv
import httpx
from airflow_provider_msads import reporting

def peak_kib() -> int:
    # VmHWM belongs to this program's memory map; ru_maxrss would carry the forking pytest's peak.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

url, destination = sys.argv[1], sys.argv[2]
before = peak_kib()  # after every import: what remains is the download itself
result = reporting.download_report(url, destination, timeout=600)
growth = peak_kib() - before
# The control: holding the file in memory does show up, so a flat figure above means something.
with open(destination, "rb") as handle:
    whole = handle.read()
control = peak_kib() - before
print(json.dumps({"growth_kib": growth, "control_kib": control, "rows": result.rows, "bytes": result.bytes}))
"""


def test_a_big_report_is_written_with_flat_memory(msads_emulator, report_conn, tmp_path: Path):
    from airflow_provider_msads.reporting import build_report_request

    hook = MicrosoftAdsHook()
    msads_emulator.set_report_size(rows=ROWS)
    request = build_report_request(
        report_type="CampaignPerformanceReportRequest",
        columns=["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions", "Clicks", "Spend"],
        account_ids=[msads_emulator.account.id],
        date_from="2026-10-01",
        date_to="2026-10-03",
    )
    request_id = hook.submit_report(request)
    status = hook.poll_report(request_id)
    while status.status == "Pending":
        status = hook.poll_report(request_id)
    assert status.download_url
    target = tmp_path / "big.csv"
    result = subprocess.run(
        [sys.executable, "-c", _DOWNLOADER, status.download_url, str(target)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"\nreport download: {figures['bytes'] / 1e6:.0f} MB written, peak RSS growth {figures['growth_kib'] / 1024:.1f} MB"
    )
    assert figures["rows"] == ROWS
    assert figures["bytes"] == target.stat().st_size > 100 * 1024 * 1024
    assert figures["growth_kib"] < 64 * 1024, figures
    assert figures["control_kib"] * 1024 > figures["bytes"] / 2, figures  # the measurement can see growth
    assert msads_emulator.downloads_with_credentials == 0
