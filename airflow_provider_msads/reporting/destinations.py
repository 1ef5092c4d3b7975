"""Where a finished report goes: a local path or an ObjectStoragePath URL, and only ever complete.

A file appears under its final name only when it is whole. Local destinations (a plain path or a
URL of a local scheme, :data:`LOCAL_SCHEMES`, in any case: one code path for all) get a
temporary sibling and an atomic rename; S3 gets the report as a multipart upload while it is
written (:class:`.s3_multipart.S3StreamWriter`), Azure Blob as blocks staged while it is written
(:func:`.azure.azure_stream`), GCS as gcsfs's resumable upload while it is written
(:func:`_committed`), each completed only when the report is whole; other object stores
get the finished file uploaded by a publisher (the Airflow shell's, on ObjectStoragePath, which
calls :func:`upload_file`).

What is refused, and why (also in the README):

* a **bucket or container that does not exist**: checked by :func:`check_destination` before the
  report is submitted, and never created (s3fs would happily create a mistyped bucket and put
  the report there); only local folders are created;
* a **bucket that cannot be inspected** (403), unless the storage connection lists it in
  :data:`WRITE_ONLY_BUCKETS_EXTRA`: a mistyped name can be a stranger's world-writable bucket;
* a **folder, a symbolic link or a special file at the final local name**: a rename would move
  the report *into* the folder, or replace a link someone set up on purpose;
* **another user's or a live process's scratch files** are never swept: only files whose names
  this module made, owned by this user, and stale (owner process gone, or older than a day).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any
from urllib.parse import urlsplit

from airflow_provider_msads.errors import ReportRequestError
from airflow_provider_msads.reporting import azure
from airflow_provider_msads.reporting.s3_multipart import (
    PART_SIZE,
    UPLOAD_CONCURRENCY,
    is_s3fs,
    s3_stream,
    upload_multipart,
)
from airflow_provider_msads.reporting.scratch import (
    owner_tag,
    sweep_stale,
)

log = logging.getLogger(__name__)

#: The mode of every local report file, whatever the umask: the owner writes, the owner's group
#: reads (a loader sharing a group folder with the worker), others nothing. Reports hold the
#: advertiser's spend and search terms: not secrets like the token store (0600), but not for
#: every account on the host either. With Debian's per-user groups this is 0600 in effect.
REPORT_FILE_MODE = 0o640
#: Extra of the *storage* connection (e.g. ``aws_default``) listing buckets that it may write but
#: not inspect (no s3:ListBucket / storage.buckets.get): the only buckets a report goes to unchecked.
WRITE_ONLY_BUCKETS_EXTRA = "msads_write_only_buckets"
#: Prefix of the worker's scratch folders and files in the temp folder (the zip being downloaded).
SCRATCH_PREFIX = "msads-report-"
#: Upload block for object stores: what the upload holds in memory; S3's part size (see there).
UPLOAD_BLOCK_SIZE = PART_SIZE
#: Stores whose uploads commit atomically and can be abandoned (fsspec's ``autocommit=False`` with
#: ``commit``/``discard``): S3's multipart upload (s3fs), GCS's resumable upload (gcsfs). The
#: report goes straight to its final key, which appears only when the upload is finalized. Others
#: get a hidden staging key, then a move.
ATOMIC_COMMIT_PROTOCOLS = frozenset({"s3", "s3a", "s3n", "gs", "gcs"})
#: The S3 schemes: written while the report arrives (:func:`output`), parts going out as they fill.
S3_PROTOCOLS = frozenset({"s3", "s3a", "s3n"})
#: The GCS schemes: written while the report arrives too, into gcsfs's resumable upload (one chunk
#: of :data:`UPLOAD_BLOCK_SIZE` sent whenever its buffer is full, finalized at the end).
GCS_PROTOCOLS = frozenset({"gs", "gcs"})
#: The Azure Blob schemes (adlfs): written while the report arrives, as staged blocks.
AZURE_PROTOCOLS = frozenset({"abfs", "abfss"})
#: Every scheme whose report is uploaded while it is written (:func:`output`).
STREAMED_PROTOCOLS = S3_PROTOCOLS | GCS_PROTOCOLS | AZURE_PROTOCOLS


#: URL schemes that name this machine's file system, compared in lower case (``FILE://`` is
#: ``file://``): fsspec's LocalFileSystem answers to ``file`` and ``local``, and its registry maps
#: ``asynclocal`` to a local file system too. Every one of them takes the local rules (no folder,
#: link or special file at the final name; an atomic rename): sent through ObjectStoragePath
#: instead, a folder would receive the report as a hidden ``.part`` and a link would be followed.
LOCAL_SCHEMES = frozenset({"file", "local", "asynclocal"})
#: The only hosts a local URL may name (RFC 8089): none, or this machine by name.
LOCAL_HOSTS = frozenset({"", "localhost"})


def _scheme(destination: str) -> str:
    """The URL scheme in lower case ("" for a plain path; a Windows drive letter is no scheme)."""
    try:
        scheme = urlsplit(destination).scheme.lower()
    except ValueError:
        return ""
    return scheme if len(scheme) > 1 else ""


def is_url(destination: str) -> bool:
    """``s3://…``, ``file://…``, ``file:/…``: a URL; a plain or Windows path is not."""
    scheme = _scheme(destination)
    return bool(scheme) and ("://" in destination or scheme in LOCAL_SCHEMES)


def is_local(destination: str) -> bool:
    """A plain path or a URL of a local scheme (any case): all are written by the same local code path."""
    return not is_url(destination) or _scheme(destination) in LOCAL_SCHEMES


def final_name(destination: str, compression: str | None) -> str:
    """The destination, with ``.gz`` added when gzip is asked for and the name lacks it."""
    if compression == "gzip" and not destination.endswith(".gz"):
        return destination + ".gz"
    return destination


#: Publishes a finished local file under a URL destination (the Airflow shell gives one that uses
#: ObjectStoragePath): it must make the file appear under the final name only when complete.
Publisher = Callable[[str, str], None]


def local_path(destination: str) -> str:
    """The absolute path of a local destination (a plain path with ``~`` expanded, or a local URL).

    A local URL must name an absolute path on this machine: ``file://reports/x.csv`` names host
    ``reports`` (not a folder: the path would be ``/x.csv``) and is refused, as is any host but
    ``localhost``, a relative ``file:x.csv``, and a query or fragment (which would be cut off).
    """
    if not is_url(destination):
        return os.path.abspath(os.path.expanduser(destination))
    parts = urlsplit(destination)
    if parts.netloc.lower() not in LOCAL_HOSTS:
        raise _refuse(
            destination,
            f"names host {parts.netloc.rpartition('@')[2]!r}; a local file URL names no host (or localhost)",
            "Write three slashes before an absolute path, e.g. 'file:///data/reports/campaign.csv' (two slashes "
            "make the first folder a host name), or give the plain path '/data/reports/campaign.csv'.",
        )
    if parts.query or parts.fragment or "?" in destination or "#" in destination:
        raise _refuse(destination, "has a '?' or '#' part", "Give a plain path for file names with '?' or '#'.")
    if not parts.path.startswith("/"):
        raise _refuse(
            destination,
            "is a relative file URL",
            "Give an absolute path, e.g. 'file:///data/reports/campaign.csv', or a plain path.",
        )
    return os.path.abspath(parts.path)


def _shown(destination: str) -> str:
    """The destination for a message: without a password, should someone have put one in it."""
    parts = urlsplit(destination) if is_url(destination) else None
    if parts is not None and parts.password:
        return destination.replace(f":{parts.password}@", ":***@", 1)
    return destination


def _refuse(destination: str, problem: str, remedy: str) -> ReportRequestError:
    return ReportRequestError(f"`destination` {_shown(destination)!r} {problem}.", field="destination", remedy=remedy)


# ------------------------------------------------------------------------------------ checking


def check_destination(destination: str, compression: str | None = None) -> None:
    """Refuse a destination the report could not be written to, before anything is submitted.

    Local: the final name must not be a folder, a symbolic link or a special file, and the nearest
    existing parent must be a folder (missing folders are created when writing). Object stores:
    the bucket (container) must exist; it is never created. A store that will not say (no
    permission to look at the bucket) is refused too, unless the storage connection names the
    bucket in :data:`WRITE_ONLY_BUCKETS_EXTRA`: a mistyped name may be a stranger's bucket that
    accepts anyone's writes.
    """
    final = final_name(destination, compression)
    if is_local(final):
        _check_local(local_path(final), destination)
        return
    _check_bucket(final, destination)


def _check_local(target: str, destination: str) -> None:
    try:
        info = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise _refuse(
                destination,
                "is a symbolic link",
                "Point destination at the real file's path; a report never replaces or follows a link.",
            )
        if stat.S_ISDIR(info.st_mode):
            raise _refuse(
                destination,
                "is a folder",
                "Give the file's name, e.g. '.../campaign.csv', not the folder it goes in.",
            )
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(destination, "is not a regular file", "Point destination at a plain file's path.")
        return
    parent = os.path.dirname(target)
    while parent and not os.path.exists(parent):
        parent = os.path.dirname(parent) if os.path.dirname(parent) != parent else ""
    if parent and not os.path.isdir(parent):
        raise _refuse(
            destination,
            f"is inside {parent!r}, which is a file, not a folder",
            "Fix the path: one of its folders is an existing file.",
        )


def _listed(fs: Any, bucket: str) -> bool:
    """Whether the store's own bucket list names ``bucket`` (False when it cannot be listed)."""
    try:
        names = fs.ls("", detail=False)
    except Exception:
        return False
    return any(str(name).strip("/").rpartition("/")[2] == bucket for name in names)


def _check_bucket(final: str, destination: str) -> None:
    from airflow_provider_msads.compat.versions import object_storage_path

    try:
        path = object_storage_path(final)
        path.fs  # noqa: B018 - some Airflow versions find the scheme's file system only here
    except ValueError as exc:  # a scheme no installed provider serves (wasb://, …): before any submit
        raise _refuse(destination, f"cannot be opened ({exc})", azure.SCHEME_REMEDY) from None
    # Airflow 2.11's ObjectStoragePath keeps the connection id in the bucket ("aws_default@bucket").
    bucket = str(getattr(path, "bucket", "") or "").rpartition("@")[2]
    if not bucket:  # a store without buckets (memory://, …): nothing to check
        return
    try:
        # Ask the store, not a listing an fsspec instance cached earlier in this process (a cached
        # filesystem can remember a bucket list from before the bucket was made).
        with contextlib.suppress(Exception):
            path.fs.invalidate_cache()
        path.fs.info(bucket)
    except FileNotFoundError:
        if _listed(path.fs, bucket):  # some s3fs versions answer a bucket's info() with "not found"
            return
        raise _refuse(
            destination,
            f"names bucket {bucket!r}, which does not exist (or the connection cannot see it)",
            "Fix the bucket's name, or create the bucket; reports never create buckets, so a typo "
            "cannot send data to a new one.",
        ) from None
    except Exception as exc:  # OSError (s3fs, gcsfs) or the Azure SDK's HttpResponseError (adlfs)
        if not is_forbidden(exc):
            raise
        # Not allowed to look (403). A mistyped name can be somebody else's bucket that lets anyone
        # write: the report would go to them. The store's own bucket list names only the caller's
        # buckets (S3's ListBuckets), so a bucket found there is ours after all.
        if _listed(path.fs, bucket):
            return
        conn_id = _conn_id(path, final)
        if bucket in write_only_buckets(conn_id):
            log.warning(
                "Bucket %r cannot be inspected (no permission to look); writing to it because connection %r lists "
                "it in %s.",
                bucket,
                conn_id,
                WRITE_ONLY_BUCKETS_EXTRA,
            )
            return
        raise _refuse(
            destination,
            f"names bucket {bucket!r}, which this connection may not inspect (access denied), so nothing shows "
            "that it is the bucket you mean rather than somebody else's",
            "Fix the bucket's name; or allow the connection to look at the bucket (s3:ListBucket, "
            "storage.buckets.get, read permission on an Azure container); or, for a bucket that is write-only on "
            f'purpose, list its name in the storage connection\'s extra, e.g. {{"{WRITE_ONLY_BUCKETS_EXTRA}": '
            f'["{bucket}"]}} on connection {conn_id or "<conn_id>"!r} (the destination must then name it: '
            f"{path.protocol}://<conn_id>@{bucket}/...).",
        ) from None


def is_forbidden(exc: BaseException) -> bool:
    """A store's "access denied": s3fs raises PermissionError, gcsfs a plain ``OSError("Forbidden: …")``."""
    if isinstance(exc, PermissionError) or azure.is_forbidden(exc):  # the Azure SDK's 403 (adlfs)
        return True
    return type(exc) is OSError and str(exc).startswith("Forbidden")


def _conn_id(path: Any, final: str) -> str | None:
    """The Airflow connection an ObjectStoragePath uses (``s3://conn_id@bucket/key``), if any."""
    conn_id = getattr(path, "conn_id", None) or urlsplit(final).username
    return str(conn_id) if conn_id else None


def write_only_buckets(conn_id: str | None) -> frozenset[str]:
    """The buckets the storage connection's owner says are write-only on purpose (Extra
    :data:`WRITE_ONLY_BUCKETS_EXTRA`: a list of names, or one comma-separated string).

    It sits on the storage connection because the people who may edit connections are the ones
    trusted with where data goes; naming each bucket keeps a typo of the name refused.
    """
    if not conn_id:
        return frozenset()
    from airflow_provider_msads.compat.versions import connection_extra

    try:
        extra = connection_extra(conn_id)
    except Exception:
        return frozenset()
    value = extra.get(WRITE_ONLY_BUCKETS_EXTRA) if isinstance(extra, dict) else None
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return frozenset()
    return frozenset(str(name).strip() for name in value if str(name).strip())


# ------------------------------------------------------------------------------------- writing


@contextlib.contextmanager
def output(destination: str, publish: Publisher | None, *, scratch: str | None = None) -> Iterator[IO[bytes]]:
    """A binary writer (``write``, ``tell``) whose bytes become ``destination`` when the ``with``
    block ends normally, and nothing at all when it raises.

    Local destinations (plain path or local URL) get a temporary file next to the final one, so
    the move is an atomic rename. S3 destinations published by :func:`publish_to_object_storage`
    get a writer sending the parts of a multipart upload as they fill, completed at the end
    (:class:`.s3_multipart.S3StreamWriter`); Azure Blob, blocks staged as they fill, one Put Block
    List at the end (:func:`.azure.azure_stream`); GCS, gcsfs's resumable upload, a chunk sent
    whenever one is full, finalized at the end (:func:`_committed`). Other object stores (and
    other publishers) get a temporary file in ``scratch`` (the temp folder by default), then
    ``publish``.
    """
    if is_local(destination):
        with _local_output(destination) as handle:
            yield handle
        return
    if publish is None:
        raise ReportRequestError(
            f"`destination` {_shown(destination)!r} is an object store, and nothing was given to upload it.",
            field="destination",
            remedy="Use the hook or the operator, which publish through ObjectStoragePath.",
        )
    streamed = _streaming_output(destination, publish)
    if streamed is not None:  # S3: the parts go out while the report is still being written
        with streamed as handle:
            yield handle
        return
    name = os.path.basename(urlsplit(destination).path) or "report.csv"
    folder = scratch or tempfile.gettempdir()
    fd, temp = tempfile.mkstemp(prefix=f"{SCRATCH_PREFIX}{owner_tag()}-", suffix=f"-{name[-40:]}", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        publish(temp, destination)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def uploads_while_written(destination: str, publish: Publisher | None) -> bool:
    """Whether :func:`output` may upload ``destination`` as it is written (S3 through the provider's
    publisher) rather than write it to a file first; decided from the name alone."""
    return publish is publish_to_object_storage and _scheme(destination) in STREAMED_PROTOCOLS


def _streaming_output(destination: str, publish: Publisher) -> contextlib.AbstractContextManager[IO[bytes]] | None:
    """A writer that uploads as it is written, for the stores that have one (S3, GCS, Azure Blob;
    else None: a temporary file, then ``publish``). Only for the provider's own publisher: another
    one (a test's, a user's) asked to be handed a finished file."""
    if not uploads_while_written(destination, publish):
        return None
    from airflow_provider_msads.compat.versions import object_storage_path

    check_destination(destination)  # as publish_to_object_storage() would, before the first byte
    final = object_storage_path(destination)
    if is_s3fs(final.fs):
        return s3_stream(final.fs, final.path)
    if _scheme(destination) in GCS_PROTOCOLS:
        return _committed(final.fs, final.path)
    if azure.is_blob_fs(final.fs):
        return azure.azure_stream(final.fs, final.path)
    return None


@contextlib.contextmanager
def _local_output(destination: str) -> Iterator[IO[bytes]]:
    target = local_path(destination)
    _check_local(target, destination)
    folder, name = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    sweep_stale(folder, f".{name}.msads-")
    fd, temp = tempfile.mkstemp(prefix=f".{name}.msads-{owner_tag()}-", suffix=".part", dir=folder)
    try:
        os.fchmod(fd, REPORT_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _check_local(target, destination)  # again: something may have appeared meanwhile
        os.replace(temp, target)
        _fsync_folder(folder)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _fsync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder; the rename stands
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def part_name(name: str) -> str:
    """A hidden sibling name for a file being written, ignored by loaders that glob ``*.csv``."""
    return f".{name}.msads-{owner_tag()}-{uuid.uuid4().hex}.part"


# ------------------------------------------------------------------------------------ uploading


def upload_file(local: str, fs: Any, path: str, protocol: str) -> None:
    """Upload ``local`` to ``path`` on the fsspec file system ``fs``; the final key appears whole.

    S3 and GCS (:data:`ATOMIC_COMMIT_PROTOCOLS`): a multipart (S3) or resumable (GCS) upload
    straight to the final key, committed only after the last byte and cancelled on failure: no
    partial object ever sits under the final key, and a killed worker leaves an incomplete upload
    (invisible; on S3 the bucket's lifecycle rule removes it, see the README; a GCS session
    expires by itself). Azure Blob (adlfs): staged blocks committed by one Put Block List
    (:mod:`.azure`). Other stores: a hidden sibling key, then a move.
    Memory is bounded by :data:`UPLOAD_BLOCK_SIZE` (times :data:`.s3_multipart.UPLOAD_CONCURRENCY`
    on S3 and Azure), not
    s3fs's 50 MiB default.
    """
    if azure.is_blob_fs(fs):  # Azure Blob: staged blocks, one Put Block List (reporting/azure.py)
        azure.upload_blocks(local, fs, path, UPLOAD_BLOCK_SIZE, UPLOAD_CONCURRENCY)
        return
    if protocol in ATOMIC_COMMIT_PROTOCOLS:
        if is_s3fs(fs) and os.path.getsize(local) > UPLOAD_BLOCK_SIZE:
            upload_multipart(local, fs, path)
        else:  # GCS, another S3 implementation, or a file of one part (a single atomic PUT)
            _upload_committed(local, fs, path)
        return
    folder, _, name = path.rpartition("/")
    staging = f"{folder}/{part_name(name)}" if folder else part_name(name)
    try:
        with open(local, "rb") as source, fs.open(staging, "wb", block_size=UPLOAD_BLOCK_SIZE) as target:
            shutil.copyfileobj(source, target, UPLOAD_BLOCK_SIZE)
        fs.mv(staging, path)
    finally:
        with contextlib.suppress(Exception):
            if fs.exists(staging):
                fs.rm(staging)


def _upload_committed(local: str, fs: Any, path: str) -> None:
    with _committed(fs, path) as target, open(local, "rb") as source:
        shutil.copyfileobj(source, target, UPLOAD_BLOCK_SIZE)


@contextlib.contextmanager
def _committed(fs: Any, path: str) -> Iterator[IO[bytes]]:
    """fsspec's file with ``autocommit=False`` (s3fs's multipart, gcsfs's resumable upload): what
    is written goes out in :data:`UPLOAD_BLOCK_SIZE` pieces, and the final key appears only when
    the ``with`` block ends normally; on anything escaping it the upload is discarded."""
    # _open, not open: fsspec's open() would also enlist the file in a transaction it keeps.
    target = fs._open(path, mode="wb", block_size=UPLOAD_BLOCK_SIZE, autocommit=False)
    try:
        yield target
        target.close()  # uploads what it can; with autocommit=False the upload stays open
        target.commit()  # the final key appears now, whole
    except BaseException:
        with contextlib.suppress(Exception):
            target.discard()  # aborts the multipart upload, cancels the resumable session
        target.closed = True  # nothing to flush: a later close() (or __del__) must not upload
        raise


def publish_to_object_storage(local: str, destination: str) -> None:
    """Upload a finished file to an object-store URL (``s3://conn_id@bucket/key``) through
    ObjectStoragePath, so the store's Airflow connection is used; the final key appears only with
    the whole file (see :func:`airflow_provider_msads.reporting.destinations.upload_file`).

    Nothing is created on the way: a bucket that does not exist is an error
    (:func:`~airflow_provider_msads.reporting.destinations.check_destination` says so before the
    report is even submitted), and local destinations never come here.
    """
    from airflow_provider_msads.compat.versions import object_storage_path

    check_destination(destination)
    final = object_storage_path(destination)
    upload_file(local, final.fs, final.path, final.protocol)
