"""Byte-range responses for audio, from local files and from memory
(object-store reads), with one behaviour (RFC 9110): one range is served
as 206, a syntactically bad or multi-part Range is ignored (200 with
everything), a range past the end is 416 with the uniform error body.

Starlette's ``FileResponse`` answers a Range it cannot parse with a
text/plain 400 of its own; ``file_range_response`` checks the header
first and hands it only ranges this module accepts.
"""

from __future__ import annotations

import os
import re

from fastapi.responses import FileResponse, Response

from serving.exceptions import RangeNotSatisfiableError

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive ``(start, end)`` to serve, ``None`` for the whole body."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiableError(
                "a suffix range of 0 bytes selects nothing",
                headers={"Content-Range": f"bytes */{size}"},
            )
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiableError(
            f"range {header!r} is outside the {size} bytes of the file",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def bytes_range_response(
    data: bytes, range_header: str | None, *, media_type: str, filename: str
) -> Response:
    size = len(data)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    selected = parse_range(range_header, size)
    if selected is None:
        return Response(data, media_type=media_type, headers=headers)
    start, end = selected
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type=media_type, headers=headers)


class _CheckedRangeFileResponse(FileResponse):
    """A ``FileResponse`` that reads Range with ``parse_range``: what that
    parser ignores is ignored here too (served whole)."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            selected = parse_range(http_range, file_size)
        except RangeNotSatisfiableError:  # the file changed since it was checked
            return []
        return [] if selected is None else [(selected[0], selected[1] + 1)]  # end exclusive


def file_range_response(
    path: str, range_header: str | None, *, media_type: str, filename: str
) -> Response:
    """``path`` whole or in the one range asked for; a range outside the
    file raises ``RangeNotSatisfiableError`` (416) before anything is sent."""
    stat = os.stat(path)
    parse_range(range_header, stat.st_size)
    return _CheckedRangeFileResponse(
        path, media_type=media_type, filename=filename, stat_result=stat
    )
