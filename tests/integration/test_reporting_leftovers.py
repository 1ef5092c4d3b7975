"""What a killed download leaves behind is swept by the next run (issue 18 item 7).

A child process downloads a report from the emulator and is SIGKILLed in the middle of unpacking
it: its ``.part`` file stays next to the destination and, on the whole-zip path (the fallback
when a zip cannot be read as it arrives), its scratch folder with ``report.zip`` in the temp folder. The next run removes both, and only those: a live process's files, another
host's fresh ones and another user's are left alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from _support.dags import report_link

from airflow_provider_msads.hooks.msads import MicrosoftAdsHook
from airflow_provider_msads.reporting import scratch as scratch_files

pytestmark = pytest.mark.integration

_KILLED = """
import os, signal, sys
from airflow_provider_msads.reporting import download

real_feed, fed = download.RowCounter.feed, []

def feed_then_die(self, chunk):
    real_feed(self, chunk)
    fed.append(len(chunk))
    if len(fed) == 3:  # mid-unpack: the zip is in scratch, two chunks are in the .part file
        os.kill(os.getpid(), signal.SIGKILL)

download.RowCounter.feed = feed_then_die
if sys.argv[3] == "whole":  # the whole-zip path (the fallback), which keeps the zip in scratch
    def unstreamable(reader):
        raise download.Unstreamable("forced by the test")
    download.read_local_header = unstreamable
download.download_report(sys.argv[1], sys.argv[2])
"""


def _link(emulator, hook: MicrosoftAdsHook) -> str:
    return report_link(emulator, hook, ["TimePeriod", "AccountId", "CampaignId", "CampaignName", "Impressions"])


def test_the_next_run_sweeps_what_a_killed_one_left(
    msads_emulator, report_conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    out = tmp_path / "out"
    destination = out / "campaign.csv"
    msads_emulator.set_report_size(rows=100_000)  # several 1 MiB chunks
    hook = MicrosoftAdsHook()
    url = _link(msads_emulator, hook)

    def killed(how: str) -> None:
        child = subprocess.run(
            [sys.executable, "-c", _KILLED, url, str(destination), how],
            env={**os.environ, "TMPDIR": str(scratch_root)},
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-2000:]

    killed("streamed")  # the zip is inflated as it arrives: only the .part file is left
    assert list(scratch_root.iterdir()) == []
    assert [p.name.endswith(".part") for p in out.iterdir()] == [True]
    for part in out.iterdir():
        part.unlink()
    killed("whole")
    scratch = list(scratch_root.iterdir())
    parts = list(out.iterdir())
    assert [p.name.startswith("msads-report-") for p in scratch] == [True]
    assert (scratch[0] / "report.zip").stat().st_size > 0
    assert [p.name.startswith(".campaign.csv.msads-") and p.name.endswith(".part") for p in parts] == [True]

    # Files the sweep must leave alone: this (live) process's, another host's fresh ones, and
    # (when the test can make one) another user's, even when stale.
    tag = scratch_files.owner_tag()
    mine = scratch_root / f"msads-report-{tag}-live"
    mine.mkdir()
    elsewhere = out / ".campaign.csv.msads-otherhost-1-abc.part"
    elsewhere.write_bytes(b"")
    old_but_other_users = out / ".campaign.csv.msads-otherhost-2-abc.part"
    old_but_other_users.write_bytes(b"")
    day_ago = time.time() - 2 * scratch_files.STALE_AFTER
    if os.getuid() == 0:
        os.chown(old_but_other_users, 65534, 65534)
    os.utime(old_but_other_users, (day_ago, day_ago))
    old_mine = out / ".campaign.csv.msads-otherhost-3-abc.part"  # another host's, but a day old
    old_mine.write_bytes(b"")
    os.utime(old_mine, (day_ago, day_ago))

    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    result = hook.download_report(url, str(destination))
    assert result.rows == 100_000 and destination.stat().st_size == result.bytes
    assert sorted(p.name for p in scratch_root.iterdir()) == [mine.name]
    left = sorted(p.name for p in out.iterdir())
    expected = ["campaign.csv", elsewhere.name]
    if os.getuid() == 0:
        expected.append(old_but_other_users.name)
    assert left == sorted(expected)
