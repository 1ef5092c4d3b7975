"""OpenLineage dataset names of report destinations (https://openlineage.io/docs/spec/naming/): a
pure function, so every form a destination takes is checked here; the listener test
(tests/integration/test_report_lineage.py) proves the local and S3 ones in emitted events."""

from __future__ import annotations

import os

import pytest

from airflow_provider_msads.compat.assets import openlineage_namespace


@pytest.mark.parametrize(
    ("destination", "expected"),
    [
        # Local file system: namespace "file", name the absolute path.
        ("/data/msads/2026-10-01.csv", ("file", "/data/msads/2026-10-01.csv")),
        ("file:///data/msads/2026-10-01.csv", ("file", "/data/msads/2026-10-01.csv")),
        ("file://localhost/data/x.csv", ("file", "/data/x.csv")),
        # Remote file system: file://{host}, name the path.
        ("file://nas1/share/x.csv", ("file://nas1", "/share/x.csv")),
        # S3 and GCS: the bucket is the namespace, the key (no leading slash) the name; the
        # ObjectStoragePath connection id is no part of either.
        ("s3://aws_default@lake/msads/campaign/2026-10-01.csv", ("s3://lake", "msads/campaign/2026-10-01.csv")),
        ("s3://lake/x.parquet", ("s3://lake", "x.parquet")),
        ("gcs://google_cloud_default@lake/x.csv", ("gs://lake", "x.csv")),
        ("gs://lake/x.csv", ("gs://lake", "x.csv")),
        # Anything else: scheme://host[:port] and the path (HDFS's namenode port is part of it).
        ("hdfs://namenode:8020/warehouse/x.csv", ("hdfs://namenode:8020", "/warehouse/x.csv")),
        # A password in a URL is never part of a name.
        ("sftp://user:hunter2@files.example.com/x.csv", ("sftp://files.example.com", "/x.csv")),
    ],
)
def test_destination_names(destination: str, expected: tuple[str, str]) -> None:
    assert openlineage_namespace(destination) == expected


def test_a_relative_path_is_named_by_its_absolute_path(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert openlineage_namespace("out/x.csv") == ("file", os.path.join(str(tmp_path), "out", "x.csv"))
