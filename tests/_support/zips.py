"""Zips as zipfile writes them, in memory: sizes in the local header, or a data descriptor (an
unseekable target), zip64, stored or deflated, a second entry."""

from __future__ import annotations

import io
import zipfile

DATA = b"".join(b'"2026-10-%02d","Campaign %d","%d"\r\n' % (i % 28 + 1, i, i * 7) for i in range(20_000))


class _Unseekable(io.RawIOBase):
    """Writable, not seekable: zipfile then writes a data descriptor after the entry's data."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def zip_bytes(
    data: bytes = DATA,
    *,
    name: str = "report.csv",
    method: int = zipfile.ZIP_DEFLATED,
    descriptor: bool = False,
    zip64: bool = False,
    more: dict[str, bytes] | None = None,
) -> bytes:
    target: io.RawIOBase | io.BytesIO = _Unseekable() if descriptor else io.BytesIO()
    with zipfile.ZipFile(target, "w", compression=method) as archive:  # type: ignore[arg-type]
        info = zipfile.ZipInfo(name, (2026, 10, 1, 0, 0, 0))
        info.compress_type = method
        with archive.open(info, "w", force_zip64=zip64) as entry:
            entry.write(data)
        for other, body in (more or {}).items():
            archive.writestr(other, body)
    return bytes(target.data) if isinstance(target, _Unseekable) else target.getvalue()
