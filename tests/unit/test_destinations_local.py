"""Local destinations (issue 18 item 2): a plain path and a ``file://`` URL take the same path,
refuse a folder or a symbolic link at the final name, and give reports one mode (0640)."""

from __future__ import annotations

import os
import re
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


# Issue 25 item 1: every spelling of a local URL takes the local rules; a host is refused.


def _local_urls(path: Path) -> list[str]:
    return [
        f"local://{path}",
        f"FILE://{path}",
        f"File://{path}",
        f"LOCAL://{path}",
        f"file://localhost{path}",
        f"file://LOCALHOST{path}",
        f"file:{path}",
    ]


LOCAL_URL_IDS = ["local", "FILE", "File", "LOCAL", "localhost", "LOCALHOST", "file-colon"]


@pytest.mark.parametrize("spelling", range(7), ids=LOCAL_URL_IDS)
def test_every_local_scheme_refuses_a_folder(tmp_path: Path, spelling: int):
    final = tmp_path / "campaign.csv"
    final.mkdir()
    destination = _local_urls(final)[spelling]
    assert destinations.is_local(destination)
    with pytest.raises(ReportRequestError, match="is a folder"):
        destinations.check_destination(destination)
    with pytest.raises(ReportRequestError, match="is a folder"):
        write_empty_report(["A"], destination, publish=_never_publish)
    assert list(final.iterdir()) == []  # no hidden .part moved into it
    assert [p.name for p in tmp_path.iterdir()] == ["campaign.csv"]


@pytest.mark.parametrize("spelling", range(7), ids=LOCAL_URL_IDS)
def test_every_local_scheme_refuses_a_link_to_a_folder(tmp_path: Path, spelling: int):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    final = tmp_path / "campaign.csv"
    final.symlink_to(folder, target_is_directory=True)
    destination = _local_urls(final)[spelling]
    with pytest.raises(ReportRequestError, match="symbolic link"):
        destinations.check_destination(destination)
    with pytest.raises(ReportRequestError, match="symbolic link"):
        write_empty_report(["A"], destination, publish=_never_publish)
    assert final.is_symlink() and list(folder.iterdir()) == []


@pytest.mark.parametrize("spelling", range(7), ids=LOCAL_URL_IDS)
def test_every_local_scheme_writes_the_named_file(tmp_path: Path, spelling: int):
    final = tmp_path / "new" / "campaign.csv"
    destination = _local_urls(final)[spelling]
    destinations.check_destination(destination)
    result = write_empty_report(["A"], destination, publish=_never_publish)
    assert result.path == destination  # the path reported is where the file is
    assert final.read_bytes() == b'"A"\r\n' and os.listdir(final.parent) == ["campaign.csv"]
    assert final.stat().st_mode & 0o777 == destinations.REPORT_FILE_MODE


@pytest.mark.parametrize(
    ("destination", "problem"),
    [
        ("file://reports/x.csv", "names host 'reports'"),
        ("FILE://reports/x.csv", "names host 'reports'"),
        ("local://otherhost/tmp/x.csv", "names host 'otherhost'"),
        ("file://user:pw@nas/tmp/x.csv", "names host 'nas'"),
        ("file:x.csv", "is a relative file URL"),
        ("file:///tmp/x.csv#frag", "has a '?' or '#' part"),
    ],
)
def test_a_local_url_with_a_host_or_a_relative_path_is_refused(destination: str, problem: str, tmp_path: Path):
    with pytest.raises(ReportRequestError, match=re.escape(problem)) as caught:
        destinations.check_destination(destination)
    assert caught.value.field == "destination" and "pw" not in str(caught.value)
    with pytest.raises(ReportRequestError, match=re.escape(problem)):
        write_empty_report(["A"], destination, publish=_never_publish)
    assert not Path("/x.csv").exists()


def test_the_local_schemes_cover_fsspec_local_file_systems():
    from fsspec.implementations.local import LocalFileSystem
    from fsspec.registry import known_implementations

    protocols = set(LocalFileSystem.protocol)
    protocols |= {name for name, spec in known_implementations.items() if "local" in spec["class"].lower()}
    assert protocols <= destinations.LOCAL_SCHEMES
    try:  # ObjectStoragePath's own built-in schemes (Airflow 3's task SDK; 2.11 keeps "file" only)
        from airflow.sdk.io.fs import _BUILTIN_SCHEME_TO_FS
    except ImportError:
        return
    assert set(_BUILTIN_SCHEME_TO_FS) <= destinations.LOCAL_SCHEMES


def test_object_store_urls_are_not_local():
    for url in ("s3://aws_default@bucket/x.csv", "S3://bucket/x.csv", "gs://bucket/x.csv", "memory://x/y.csv"):
        assert destinations.is_url(url) and not destinations.is_local(url)
    assert destinations.is_local("C:\\reports\\x.csv") and destinations.is_local("relative/x.csv")


def test_access_denied_is_recognised_from_each_store():
    assert destinations.is_forbidden(PermissionError("Access Denied"))  # s3fs
    assert destinations.is_forbidden(OSError("Forbidden: b/lake\nAccess denied."))  # gcsfs 403
    assert not destinations.is_forbidden(ConnectionRefusedError("refused"))  # a store that is down: raised as is
    assert not destinations.is_forbidden(OSError("Bad Request"))


@pytest.mark.parametrize("destination", ["s3://aws_default@lake/r.csv", "gs://gcp@lake/r.csv", "memory://lake/r.csv"])
def test_a_publisher_of_ones_own_gets_a_finished_file(tmp_path: Path, destination: str):
    """Only the provider's own publisher streams to S3; a publisher someone passes (a test's, a
    user's), and any store but S3, is handed the finished file to publish, as before."""
    handed: list[tuple[bytes, str]] = []

    def publish(local: str, final: str) -> None:
        handed.append((Path(local).read_bytes(), final))

    with destinations.output(destination, publish, scratch=str(tmp_path)) as out:
        out.write(b"header\r\nrow\r\n")
    assert handed == [(b"header\r\nrow\r\n", destination)]
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone
