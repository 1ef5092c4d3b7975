"""Local destinations (issue 18 item 2): a plain path and a ``file://`` URL take the same path,
refuse a folder or a symbolic link at the final name, and give reports one mode (0640)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.reporting import destinations
from airflow_provider_msads.reporting.download import write_empty_report


def _spellings(path: Path) -> list[str]:
    return [str(path), f"file://{path}"]


def _never_publish(local: str, destination: str) -> None:
    raise AssertionError(f"a local destination was handed to the object-store publisher: {destination}")


@pytest.mark.parametrize("spelling", [0, 1], ids=["path", "file-url"])
def test_a_folder_at_the_final_name_is_refused(tmp_path: Path, spelling: int):
    final = tmp_path / "campaign.csv"
    final.mkdir()
    destination = _spellings(final)[spelling]
    with pytest.raises(ReportRequestError, match="is a folder") as caught:
        destinations.check_destination(destination)
    assert caught.value.field == "destination" and "file's name" in caught.value.remedy
    with pytest.raises(ReportRequestError, match="is a folder"):
        write_empty_report(["A"], destination, publish=_never_publish)
    assert list(final.iterdir()) == []  # nothing was moved into it
    assert [p.name for p in tmp_path.iterdir()] == ["campaign.csv"]  # no temporary file left


@pytest.mark.parametrize("spelling", [0, 1], ids=["path", "file-url"])
def test_a_symbolic_link_at_the_final_name_is_refused(tmp_path: Path, spelling: int):
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_bytes(b"keep me")
    final = tmp_path / "campaign.csv"
    final.symlink_to(elsewhere)
    destination = _spellings(final)[spelling]
    with pytest.raises(ReportRequestError, match="symbolic link"):
        destinations.check_destination(destination)
    with pytest.raises(ReportRequestError, match="symbolic link"):
        write_empty_report(["A"], destination, publish=_never_publish)
    assert final.is_symlink() and elsewhere.read_bytes() == b"keep me"


def test_a_link_appearing_while_writing_is_refused_at_the_rename(tmp_path: Path):
    final = tmp_path / "campaign.csv"

    def write_while_someone_links() -> None:
        with destinations.output(str(final), None) as out:
            out.write(b"data")
            final.symlink_to(tmp_path / "target")

    with pytest.raises(ReportRequestError, match="symbolic link"):
        write_while_someone_links()
    assert final.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["campaign.csv"]


def test_a_file_in_place_of_a_folder_is_refused(tmp_path: Path):
    (tmp_path / "reports").write_bytes(b"")
    with pytest.raises(ReportRequestError, match="which is a file, not a folder"):
        destinations.check_destination(str(tmp_path / "reports" / "2026" / "campaign.csv"))


@pytest.mark.parametrize("spelling", [0, 1], ids=["path", "file-url"])
def test_both_spellings_write_the_same_file_with_one_mode(tmp_path: Path, spelling: int):
    old = os.umask(0o000)  # the mode does not depend on the umask (file:// used to take it from there)
    try:
        final = tmp_path / "new" / "folders" / "campaign.csv.gz"
        destination = _spellings(final)[spelling]
        destinations.check_destination(destination)  # missing local folders are fine: they are created
        result = write_empty_report(["A", "B"], destination, compression="gzip", publish=_never_publish)
    finally:
        os.umask(old)
    assert result.path == destination and final.stat().st_size == result.bytes
    assert final.stat().st_mode & 0o777 == destinations.REPORT_FILE_MODE == 0o640
    assert os.listdir(final.parent) == ["campaign.csv.gz"]


def test_an_existing_report_is_replaced(tmp_path: Path):
    final = tmp_path / "campaign.csv"
    final.write_bytes(b"yesterday")
    destinations.check_destination(str(final))
    write_empty_report(["A"], str(final))
    assert final.read_bytes() == b'"A"\r\n'
