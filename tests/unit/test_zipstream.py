"""The one-entry zip read as it arrives (issue 29): in-memory zips as zipfile writes them, and
crafted ones, fed in chunks of every size; damage, bombs, second entries and what falls back."""

from __future__ import annotations

import random
import struct
import zipfile
import zlib
from collections.abc import Iterator

import pytest
from _support.zips import DATA, zip_bytes

from airflow_provider_msads.errors import DAMAGED_ZIP
from airflow_provider_msads.reporting import zipstream as zs

LIMITS = zs.Limits(max_bytes=1 << 40, ratio=400, small=16 << 20)


def chunks(blob: bytes, size: int) -> Iterator[bytes]:
    return (blob[i : i + size] for i in range(0, len(blob), size))


def read(blob: bytes, size: int = 65536, limits: zs.Limits = LIMITS) -> tuple[zs.LocalEntry, bytes]:
    reader = zs.ChunkReader(chunks(blob, size))
    entry = zs.read_local_header(reader)
    return entry, b"".join(zs.entry_data(reader, entry, limits))


def _flags(blob: bytes) -> int:
    return int(struct.unpack_from("<H", blob, 6)[0])


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize(
    ("shape", "kw"),
    [
        ("sizes in the local header", {}),
        ("data descriptor (unseekable writer)", {"descriptor": True}),
        ("zip64 sizes in the local header", {"zip64": True}),
        ("zip64 data descriptor", {"descriptor": True, "zip64": True}),
        ("stored", {"method": zipfile.ZIP_STORED}),
        ("stored zip64", {"method": zipfile.ZIP_STORED, "zip64": True}),
    ],
)
def test_every_shape_reads_whole_whatever_the_chunks(shape: str, kw: dict[str, object], size: int) -> None:
    blob = zip_bytes(**kw)  # type: ignore[arg-type]
    assert bool(_flags(blob) & 0x8) is bool(kw.get("descriptor")), shape
    entry, data = read(blob, size)
    assert data == DATA and entry.name == "report.csv"
    assert entry.zip64 is bool(kw.get("zip64"))
    assert (entry.size, entry.compressed) == ((None, None) if kw.get("descriptor") else (len(DATA), entry.compressed))


def test_a_data_descriptor_without_its_signature() -> None:
    """The signature is optional (APPNOTE 4.3.9.3): cut it out, the entry still verifies."""
    blob = zip_bytes(descriptor=True)
    at = blob.index(zs.DESCRIPTOR)
    crafted = blob[:at] + blob[at + 4 :]
    assert read(crafted, 1000)[1] == DATA


def test_a_wrong_crc_or_size_is_damage() -> None:
    stored = bytearray(zip_bytes(method=zipfile.ZIP_STORED))
    stored[100] ^= 0x01  # one bit of the data: the CRC-32 no longer matches
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        read(bytes(stored))
    described = bytearray(zip_bytes(descriptor=True))
    at = described.index(zs.DESCRIPTOR)
    described[at + 4] ^= 0x01  # the descriptor's CRC
    with pytest.raises(zipfile.BadZipFile, match="CRC"):
        read(bytes(described))
    declared = bytearray(zip_bytes())
    declared[22] ^= 0x01  # the local header's uncompressed size (now one more or one less)
    with pytest.raises(DAMAGED_ZIP):
        read(bytes(declared))


@pytest.mark.parametrize("descriptor", [False, True])
def test_a_cut_download_is_damage_wherever_it_is_cut(descriptor: bool) -> None:
    blob = zip_bytes(descriptor=descriptor)
    rng = random.Random(29)
    cuts = [10, 40, 200, len(blob) // 2, len(blob) - 60, len(blob) - 30, len(blob) - 5, len(blob) - 1]
    cuts += [rng.randrange(len(blob)) for _ in range(10)]
    for cut in cuts:
        with pytest.raises(DAMAGED_ZIP):
            read(blob[:cut], 4096)


def test_a_second_entry_is_refused_with_the_count() -> None:
    with pytest.raises(zs.EntryCountError) as raised:
        read(zip_bytes(more={"b.csv": b"y", "c.csv": b"z"}))
    assert raised.value.count == 3
    with pytest.raises(zs.EntryCountError) as raised:
        read(zip_bytes(descriptor=True, more={"b.csv": b"y"}), 1)
    assert raised.value.count == 2


def test_a_second_name_in_the_central_directory_only_is_refused() -> None:
    """A crafted zip whose central directory lists two files after one local entry."""
    blob = zip_bytes()
    at = blob.index(zs.CENTRAL)
    end = blob.index(zs.END)
    record = blob[at:end]
    crafted = blob[:at] + record + record.replace(b"report.csv", b"second.csv") + blob[end:]
    with pytest.raises(zs.EntryCountError) as raised:
        read(crafted)
    assert raised.value.count == 2


def test_an_entry_of_unknown_size_is_stopped_as_soon_as_it_inflates_too_much() -> None:
    zeros = b"0" * (8 << 20)
    blob = zip_bytes(zeros, descriptor=True)  # ~8 KB of deflate, sizes unknown until the end
    produced: list[int] = []
    reader = zs.ChunkReader(chunks(blob, 1024))
    entry = zs.read_local_header(reader)
    pieces = zs.entry_data(reader, entry, zs.Limits(max_bytes=1 << 40, ratio=400, small=1 << 20))
    with pytest.raises(zs.ZipBombError) as raised:
        produced.extend(len(piece) for piece in pieces)
    assert raised.value.size > 400 * raised.value.compressed
    assert sum(produced) <= (1 << 20) + zs.PIECE  # stopped within one piece of the limit
    with pytest.raises(zs.ZipBombError):
        read(blob, limits=zs.Limits(max_bytes=3 << 20, ratio=10_000, small=1 << 20))
    assert read(blob)[1] == zeros  # the same file within the default limits


def test_a_declared_size_is_not_exceeded() -> None:
    blob = bytearray(zip_bytes(b"a" * 100_000))
    struct.pack_into("<L", blob, 22, 1000)  # claims 1000 bytes
    with pytest.raises(zipfile.BadZipFile, match="declared size"):
        read(bytes(blob))


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (zip_bytes(method=zipfile.ZIP_BZIP2), "compression method 12"),
        (zip_bytes(name="folder/"), "folder entry"),
        (zip_bytes(method=zipfile.ZIP_STORED, descriptor=True), "stored entry"),
    ],
)
def test_what_cannot_be_streamed_says_why_and_keeps_every_byte(blob: bytes, reason: str) -> None:
    reader = zs.ChunkReader(chunks(blob, 10))
    with pytest.raises(zs.Unstreamable, match=reason):
        zs.read_local_header(reader)
    assert b"".join(reader.rest()) == blob  # all of it, for the whole-zip reader


def test_an_encrypted_entry_falls_back() -> None:
    blob = bytearray(zip_bytes())
    struct.pack_into("<H", blob, 6, _flags(bytes(blob)) | 0x1)
    with pytest.raises(zs.Unstreamable, match="encrypted"):
        zs.read_local_header(zs.ChunkReader(iter([bytes(blob)])))


def test_inflating_holds_one_piece_at_a_time() -> None:
    """A megabyte of input inflating to 64 MiB comes out in pieces of at most PIECE bytes."""
    blob = zip_bytes(b"\0" * (64 << 20), descriptor=True)
    reader = zs.ChunkReader(iter([blob]))
    entry = zs.read_local_header(reader)
    sizes = [len(p) for p in zs.entry_data(reader, entry, zs.Limits(max_bytes=1 << 40, ratio=10**6, small=0))]
    assert sum(sizes) == 64 << 20 and max(sizes) <= zs.PIECE
    assert zlib.crc32(b"") == 0  # (the CRC starts from zero, as zipfile's)
