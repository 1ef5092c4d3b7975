"""The child program of :mod:`.inflate_child`: raw deflate on stdin, the inflated bytes on stdout.

Why a process: inflating in a thread of the task's own process does not overlap with the row
count and the write, because CPython's zlib takes the GIL back between every output block it fills
(four or five times per MiB) and waits for it each time behind the Python code counting rows. In a
process of its own it runs on the other core, whole.

Run by path as ``python -I -S _inflater.py PIECE MAX_BYTES RATIO SMALL DECLARED`` (``DECLARED`` is
``-1`` when the zip does not say the entry's size): it imports the standard library only, never the
package (so it starts in milliseconds and nothing of the task's configuration reaches it). It
enforces the same zip-bomb bounds as the in-process reader (it is the one that knows how much
compressed input each output needed) and ends with one line on stderr, the parent's result:

- ``msads-inflate ok <compressed> <crc> <size>``: the deflate stream ended; ``compressed`` bytes of
  stdin belonged to it (what followed is the zip's descriptor and central directory, which the
  parent still holds);
- ``msads-inflate cut <size>``: stdin ended inside the stream (a cut download, or the parent gave up);
- ``msads-inflate bomb <size> <compressed>`` / ``beyond <size>``: a bound was crossed; nothing more
  is written;
- ``msads-inflate damaged <message>``: zlib refused the data.

Signals: SIGINT is ignored (a Ctrl-C in a terminal reaches the whole process group; the parent
decides, and kills this process when it gives up). If the parent dies, stdin ends and stdout
breaks: the child exits either way, so it never outlives its download.
"""

from __future__ import annotations

import os
import signal
import sys
import zlib

#: Compressed bytes read from stdin at a time.
READ = 1024 * 1024


def _say(*words: object) -> None:
    sys.stderr.write("msads-inflate " + " ".join(str(w) for w in words) + "\n")
    sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    piece, max_bytes, ratio, small, declared = (int(a) for a in argv)
    inflater = zlib.decompressobj(-15)
    crc = size = fed = 0
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        while not inflater.eof:
            pending = os.read(stdin, READ)
            if not pending:
                _say("cut", size)
                return 1
            fed += len(pending)
            while pending and not inflater.eof:
                out = inflater.decompress(pending, piece)
                pending = inflater.unconsumed_tail
                if not out:
                    continue
                size += len(out)
                compressed = fed - len(pending) - len(inflater.unused_data)
                if declared >= 0:
                    if size > declared:
                        _say("beyond", size)
                        return 1
                elif size > max_bytes or (size > small and size > ratio * max(compressed, 1)):
                    _say("bomb", size, compressed)
                    return 1
                crc = zlib.crc32(out, crc)
                _write_all(stdout, out)
    except zlib.error as exc:
        _say("damaged", str(exc).replace("\n", " "))
        return 1
    except BrokenPipeError:  # the parent stopped reading: it has given up
        return 1
    _say("ok", fed - len(inflater.unused_data), crc, size)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
