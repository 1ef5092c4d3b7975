"""A one-entry zip read as it arrives: local header, inflate, verify, central directory.

Microsoft's report and Bulk zips hold one CSV. Their local file header comes first and says what
is needed to inflate the entry while the rest is still on the wire; the bytes after the data (the
optional data descriptor, then the central directory) are read to verify CRC-32 and both sizes,
and that the zip names no other file. Anything this reader does not handle (encryption, another
compression method, a stored entry of unknown size, a folder first) raises :class:`Unstreamable`
*before* any data is produced, with every byte read so far kept in :attr:`ChunkReader.buffer`, so
that the caller can spool the whole zip and read it with :mod:`zipfile` instead.

Damage (a cut download, a bad CRC, sizes that disagree) raises :class:`zipfile.BadZipFile` (one of
:data:`..errors.DAMAGED_ZIP`: retryable). Pure: no network, no files, no Airflow.
"""

from __future__ import annotations

import contextlib
import struct
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

#: Signatures (APPNOTE 4.3.7, 4.3.9, 4.3.12, 4.3.14-16).
LOCAL = b"PK\x03\x04"
DESCRIPTOR = b"PK\x07\x08"
CENTRAL = b"PK\x01\x02"
END = b"PK\x05\x06"
END64 = b"PK\x06\x06"
LOCATOR64 = b"PK\x06\x07"
_LOCAL_HEADER = struct.Struct("<4sHHHHHLLLHH")  # 30 bytes
_CENTRAL_HEADER = struct.Struct("<4sHHHHHHLLLHHHHHLL")  # 46 bytes
_ZIP64_EXTRA = 0x0001
_MAX32 = 0xFFFFFFFF
#: Flag bits: 0 encrypted, 3 sizes in a data descriptor, 6 strong encryption, 11 UTF-8 names.
_ENCRYPTED, _HAS_DESCRIPTOR, _STRONG, _UTF8 = 0x1, 0x8, 0x40, 0x800
#: At most this much is inflated from one piece of input at a time: a bomb never fills memory.
PIECE = 1024 * 1024
#: What is kept of the end of a zip naming a second entry, to read its count from the end record.
_END_HOLD = 22 + 65535 + 56 + 20


class Unstreamable(Exception):
    """The zip cannot be read as it arrives (``reason`` says why); nothing was produced yet."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EntryCountError(Exception):
    """The zip holds ``count`` entries where one CSV was expected."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} entries")
        self.count = count


class ZipBombError(Exception):
    """The entry inflates beyond the limits: ``size`` bytes out of ``compressed`` (so far)."""

    def __init__(self, size: int, compressed: int) -> None:
        super().__init__(f"{size} bytes from {compressed}")
        self.size = size
        self.compressed = compressed


@dataclass(frozen=True)
class Limits:
    """A zip bomb's bounds: never more than ``max_bytes``; never more than ``ratio`` times the
    compressed bytes once beyond ``small``."""

    max_bytes: int
    ratio: int
    small: int

    def exceeded(self, size: int, compressed: int) -> bool:
        return size > self.max_bytes or (size > self.small and size > self.ratio * max(compressed, 1))


@dataclass(frozen=True)
class EntryRules:
    """One kind of zip's rules (a report, a Bulk file: exactly one .csv entry, no zip bomb) and how
    that kind says no: the same checks for a whole zip (:meth:`the_entry`) and for one read as it
    arrives (:meth:`check` on its local header, :meth:`refusing` around its data)."""

    limits: Callable[[], Limits]
    refuse_count: Callable[[int], Exception]
    refuse_name: Callable[[str], Exception]
    #: (size, compressed, declared): declared sizes refused before unpacking, else while unpacking
    refuse_bomb: Callable[[int, int, bool], Exception]

    def check(self, name: str, size: int | None, compressed: int | None) -> None:
        """The one entry is a .csv whose declared size is no zip bomb (unknown sizes are checked as
        it inflates)."""
        if not name.lower().endswith(".csv"):
            raise self.refuse_name(name)
        if size is not None and compressed is not None and self.limits().exceeded(size, compressed):
            raise self.refuse_bomb(size, compressed, True)

    def the_entry(self, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
        """The single CSV entry of a whole zip."""
        entries = [e for e in archive.infolist() if not e.is_dir()]
        if len(entries) != 1:
            raise self.refuse_count(len(entries))
        entry = entries[0]
        self.check(entry.filename, entry.file_size, entry.compress_size)
        return entry

    @contextlib.contextmanager
    def refusing(self) -> Iterator[None]:
        """What the streamed reader finds on the way (a second entry, a bomb), said as this kind's errors."""
        try:
            yield
        except EntryCountError as exc:
            raise self.refuse_count(exc.count) from exc
        except ZipBombError as exc:
            raise self.refuse_bomb(exc.size, exc.compressed, False) from exc


@dataclass(frozen=True)
class LocalEntry:
    """What the local file header says. Sizes are None when they follow the data (bit 3)."""

    name: str
    flags: int
    method: int
    crc: int
    compressed: int | None
    size: int | None
    zip64: bool

    @property
    def has_descriptor(self) -> bool:
        return bool(self.flags & _HAS_DESCRIPTOR)


class ChunkReader:
    """Bytes pulled from an iterator of chunks, with what is buffered but not yet taken."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self.buffer = bytearray()
        self.eof = False

    def fill(self, size: int) -> bool:
        """Buffer at least ``size`` bytes; False when the stream ends first."""
        while len(self.buffer) < size:
            if self.eof:
                return False
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
            else:
                self.buffer += chunk
        return True

    def take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def some(self, at_most: int | None = None) -> bytes:
        """What is buffered (up to ``at_most``), else the next chunk; b"" at the end."""
        if not self.buffer and not self.fill(1):
            return b""
        if at_most is None or at_most >= len(self.buffer):
            data = bytes(self.buffer)
            self.buffer.clear()
            return data
        return self.take(at_most)

    def unread(self, data: bytes) -> None:
        self.buffer[:0] = data

    def stop(self) -> None:
        """Stop the source, when it can be stopped (a download's pipe): whoever waits on it wakes."""
        stop = getattr(self._chunks, "stop", None)
        if stop is not None:
            stop()

    def rest(self) -> Iterator[bytes]:
        """Everything not yet taken: the buffer, then the remaining chunks."""
        if self.buffer:
            yield bytes(self.buffer)
            self.buffer.clear()
        if not self.eof:
            yield from self._chunks
            self.eof = True


def read_local_header(reader: ChunkReader) -> LocalEntry:
    """Parse the first local file header, leaving it in the buffer until it is known to be handled.

    Raises :class:`Unstreamable` (buffer untouched) for what only a whole-zip reader handles, and
    :class:`zipfile.BadZipFile` when the header itself is cut short.
    """
    if not reader.fill(_LOCAL_HEADER.size):
        raise zipfile.BadZipFile("The zip ends inside its first local file header.")
    (sig, _version, flags, method, _time, _date, crc, compressed, size, name_len, extra_len) = _LOCAL_HEADER.unpack(
        bytes(reader.buffer[: _LOCAL_HEADER.size])
    )
    if sig != LOCAL:
        raise Unstreamable("it does not start with a local file header")
    end = _LOCAL_HEADER.size + name_len + extra_len
    if not reader.fill(end):
        raise zipfile.BadZipFile("The zip ends inside its first local file header.")
    raw_name = bytes(reader.buffer[_LOCAL_HEADER.size : _LOCAL_HEADER.size + name_len])
    extra = bytes(reader.buffer[_LOCAL_HEADER.size + name_len : end])
    name = raw_name.decode("utf-8" if flags & _UTF8 else "cp437", "replace")
    if flags & (_ENCRYPTED | _STRONG):
        raise Unstreamable("its entry is encrypted")
    if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise Unstreamable(f"its entry uses compression method {method}")
    if name.endswith("/"):
        raise Unstreamable("it starts with a folder entry")
    zip64 = _zip64_sizes(extra)
    known_compressed: int | None = compressed
    known_size: int | None = size
    if compressed == _MAX32 or size == _MAX32:
        if zip64 is None:
            raise Unstreamable("its local header has zip64 sizes without a zip64 extra field")
        values = list(zip64)
        if size == _MAX32:
            known_size = values.pop(0) if values else None
        if compressed == _MAX32:
            known_compressed = values.pop(0) if values else None
    if flags & _HAS_DESCRIPTOR:
        if method == zipfile.ZIP_STORED:
            raise Unstreamable("its stored entry's size follows the data")
        known_compressed = known_size = None
    elif known_compressed is None or known_size is None:
        raise Unstreamable("its local header's zip64 extra field lacks the sizes")
    del reader.buffer[:end]
    return LocalEntry(
        name=name,
        flags=flags,
        method=method,
        crc=crc,
        compressed=known_compressed,
        size=known_size,
        zip64=zip64 is not None,
    )


def _zip64_sizes(extra: bytes) -> list[int] | None:
    position = 0
    while position + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, position)
        body = extra[position + 4 : position + 4 + length]
        if kind == _ZIP64_EXTRA:
            return [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
        position += 4 + length
    return None


#: How a deflated entry is inflated: ``inflate(reader, entry, limits)`` yields the entry's bytes and
#: returns (crc, compressed, size) once the deflate stream has ended, with every byte read past it
#: given back to ``reader`` (:meth:`ChunkReader.unread`). :func:`inflate_here`, or a child process
#: (:mod:`.inflate_child`). It raises what :func:`entry_data` says.
Inflate = Callable[[ChunkReader, LocalEntry, Limits], "_Inflating"]
_Inflating = Generator[bytes, None, tuple[int, int, int]]


def entry_data(
    reader: ChunkReader, entry: LocalEntry, limits: Limits, inflate: Inflate | None = None
) -> Generator[bytes, None, None]:
    """The entry's bytes, inflated piece by piece; the zip is read to its end and verified
    (CRC-32, both sizes, the central directory naming this entry alone) before this returns.

    Raises :class:`zipfile.BadZipFile` on damage, :class:`ZipBombError` when an entry of unknown
    size inflates beyond ``limits``, :class:`EntryCountError` when another entry follows.
    """
    if entry.method == zipfile.ZIP_STORED:
        crc, compressed, size = yield from _stored(reader, entry)
    else:
        crc, compressed, size = yield from (inflate or inflate_here)(reader, entry, limits)
    if entry.has_descriptor:
        _read_descriptor(reader, entry, crc, compressed, size)
    elif (crc, compressed, size) != (entry.crc, entry.compressed, entry.size):
        raise zipfile.BadZipFile(f"Bad CRC-32 or sizes for {entry.name!r}.")
    _read_central_directory(reader, entry)


def _stored(reader: ChunkReader, entry: LocalEntry) -> _Inflating:
    assert entry.compressed is not None  # read_local_header refused a stored entry of unknown size
    crc = 0
    left = entry.compressed
    while left:
        piece = reader.some(min(left, PIECE))
        if not piece:
            raise zipfile.BadZipFile(CUT)
        left -= len(piece)
        crc = zlib.crc32(piece, crc)
        yield piece
    return crc, entry.compressed, entry.compressed


def inflate_here(
    reader: ChunkReader, entry: LocalEntry, limits: Limits
) -> Generator[bytes, None, tuple[int, int, int]]:
    """:data:`Inflate` in this thread: at most :data:`PIECE` out of each call, so a bomb never fills memory."""
    crc = 0
    size = 0
    inflater = zlib.decompressobj(-15)
    fed = 0
    pending = b""
    while not inflater.eof:
        if not pending:
            pending = reader.some()
            if not pending:
                raise zipfile.BadZipFile(CUT)
            fed += len(pending)
        piece = inflater.decompress(pending, PIECE)
        pending = inflater.unconsumed_tail
        if not piece:
            continue
        size += len(piece)
        if entry.size is not None:
            if size > entry.size:
                raise zipfile.BadZipFile(beyond_declared(entry))
        elif limits.exceeded(size, fed - len(pending)):
            raise ZipBombError(size, fed - len(pending))
        crc = zlib.crc32(piece, crc)
        yield piece
    unused = inflater.unused_data
    reader.unread(unused)
    return crc, fed - len(unused), size


#: Why a zip is damaged when it ends inside its entry's data.
CUT = "The zip ends inside its entry's data (a cut download)."


def beyond_declared(entry: LocalEntry) -> str:
    return f"The entry {entry.name!r} inflates beyond its declared size."


def _read_descriptor(reader: ChunkReader, entry: LocalEntry, crc: int, compressed: int, size: int) -> None:
    """The data descriptor: with or without its signature, 32- or 64-bit sizes; the layout that
    matches what was read and is followed by a zip signature is the one."""
    reader.fill(28)
    head = bytes(reader.buffer[:28])
    layouts = (("<4sLQQ", True), ("<4sLLL", True), ("<LQQ", False), ("<LLL", False))
    for layout, signed in layouts:
        length = struct.calcsize(layout)
        if len(head) < length + 4:
            continue
        values = struct.unpack_from(layout, head)
        if signed:
            if values[0] != DESCRIPTOR:
                continue
            values = values[1:]
        if tuple(values) == (crc, compressed, size) and head[length : length + 2] == b"PK":
            reader.take(length)
            return
    raise zipfile.BadZipFile(f"Bad CRC-32 or sizes for {entry.name!r} (data descriptor).")


def _read_central_directory(reader: ChunkReader, entry: LocalEntry) -> None:
    if not reader.fill(4):
        raise zipfile.BadZipFile("The zip ends before its central directory (a cut download).")
    if bytes(reader.buffer[:4]) == LOCAL:
        raise EntryCountError(_count_from_end(reader))
    files = 0
    names: list[str] = []
    while reader.fill(4) and bytes(reader.buffer[:4]) == CENTRAL:
        if not reader.fill(_CENTRAL_HEADER.size):
            break
        fields = _CENTRAL_HEADER.unpack(bytes(reader.buffer[: _CENTRAL_HEADER.size]))
        flags, name_len, extra_len, comment_len = fields[3], fields[10], fields[11], fields[12]
        length = _CENTRAL_HEADER.size + name_len + extra_len + comment_len
        if not reader.fill(length):
            break
        raw = bytes(reader.buffer[_CENTRAL_HEADER.size : _CENTRAL_HEADER.size + name_len])
        reader.take(length)
        name = raw.decode("utf-8" if flags & _UTF8 else "cp437", "replace")
        if not name.endswith("/"):
            files += 1
            names.append(name)
    if not reader.fill(4):
        raise zipfile.BadZipFile("The zip ends inside its central directory (a cut download).")
    if bytes(reader.buffer[:4]) not in (END, END64, LOCATOR64):
        raise zipfile.BadZipFile("Unexpected bytes where the zip's central directory should be.")
    if files != 1:
        raise EntryCountError(files)
    if names[0] != entry.name:
        raise zipfile.BadZipFile(
            f"The central directory names {names[0][:80]!r}, the local header {entry.name[:80]!r}."
        )
    _read_end(reader)


def _read_end(reader: ChunkReader) -> None:
    """The end records, then nothing but the zip's comment."""
    while True:
        if not reader.fill(4):
            raise zipfile.BadZipFile("The zip ends before its end record (a cut download).")
        sig = bytes(reader.buffer[:4])
        if sig == END64:
            if not reader.fill(12):
                break
            reader.take(12 + struct.unpack_from("<Q", reader.buffer, 4)[0])
        elif sig == LOCATOR64:
            reader.take(20)
        elif sig == END:
            if not reader.fill(22):
                break
            comment = struct.unpack_from("<H", reader.buffer, 20)[0]
            if not reader.fill(22 + comment):
                break
            reader.take(22 + comment)
            for _ in reader.rest():  # nothing should follow; what does is not the zip's
                pass
            return
        else:
            raise zipfile.BadZipFile("Unexpected bytes in the zip's end records.")
    raise zipfile.BadZipFile("The zip ends inside its end record (a cut download).")


def _count_from_end(reader: ChunkReader) -> int:
    """Another local entry follows the first: drain the rest, keeping only its end, and read the
    entry count from the end record (bounded memory whatever follows)."""
    tail = bytearray()
    for chunk in reader.rest():
        tail += chunk
        if len(tail) > 2 * _END_HOLD:
            del tail[: len(tail) - _END_HOLD]
    at = tail.rfind(END)
    if at < 0 or at + 22 > len(tail):
        raise zipfile.BadZipFile("The zip ends before its end record (a cut download).")
    count: int = struct.unpack_from("<H", tail, at + 10)[0]
    at64 = tail.rfind(END64, 0, at)
    if count == 0xFFFF and at64 >= 0 and at64 + 40 <= len(tail):
        count = struct.unpack_from("<Q", tail, at64 + 32)[0]
    return max(count, 2)
