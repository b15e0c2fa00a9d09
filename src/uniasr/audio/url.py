"""http(s) input: a download into memory with a deadline for the whole transfer and a size limit."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from uniasr.audio.errors import AudioError

URL_TIMEOUT_S = 30.0  # for the whole download, not per socket read
MAX_URL_BYTES = 1 << 30  # 1 GiB


def download(url: str, label: str | None = None) -> bytes:
    """GET an http(s) URL into memory within ``URL_TIMEOUT_S`` (read at each call) for the whole download,
    not per socket read (a server that trickles bytes cannot hold the caller longer), and a size limit.
    Every error is an AudioError that starts with `label` (default: the URL; it should name the URL too).
    """
    label = label or url
    deadline = time.monotonic() + URL_TIMEOUT_S
    chunks: list[bytes] = []
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:  # noqa: S310 - scheme checked
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_URL_BYTES:
                raise AudioError(f"{label}: Content-Length {declared} exceeds the {MAX_URL_BYTES}-byte limit")
            while size <= MAX_URL_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"not complete after {URL_TIMEOUT_S:g} s ({size} bytes received)")
                _set_read_timeout(response, left)
                chunk = response.read1(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        raise AudioError(f"{label}: download failed with HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AudioError(
            f"{label}: download failed ({reason}; the whole download must finish within {URL_TIMEOUT_S:g} s)"
        ) from exc
    if size > MAX_URL_BYTES:
        raise AudioError(f"{label}: download exceeds the {MAX_URL_BYTES}-byte limit")
    return b"".join(chunks)


def _set_read_timeout(response: Any, seconds: float) -> None:
    """Let the next socket read wait at most until the download's deadline (best effort: http.client keeps
    the socket at response.fp.raw._sock)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))
