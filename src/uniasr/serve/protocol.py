"""FunASR's 2pass websocket protocol: the start message, the replies, and how its modes map onto ours.

Client -> server: one JSON start message, then binary PCM16 LE mono (or the bytes of a container file when
``wav_format`` is not ``pcm``: decoded at the end, then run in the requested mode like PCM), then
``{"is_speaking": false}``. A connection may carry several streams one
after the other (each starts with its own start message).

Mode mapping (FunASR mode -> our session mode; reply ``mode`` labels):

==========  ===========  ============================================================================
FunASR      ours         replies
==========  ===========  ============================================================================
``online``  ``fast``     partials and finals as ``online`` (pass 1 only)
``2pass``   ``normal``   partials as ``2pass-online``; pass-2 refreshes (``is_final: false``) and finals
                         (``is_final: true``) as ``2pass-offline``
``offline`` ``offline``  one ``offline`` reply per stream after ``is_speaking: false`` (its text joins the
                         utterances the VAD found; ``segments`` lists them)
==========  ===========  ============================================================================

Every reply carries FunASR's fields (``mode``, ``wav_name``, ``text``, ``is_final``, ``timestamp`` as a JSON
string ``"[[beg_ms,end_ms],...]"``) plus ours: ``event`` (partial | refresh | final), ``span`` =
``[start_ms, end_ms]``, the stretch of the stream whose earlier text this message replaces, and
``utterance`` (index within the stream). Unlike FunASR (whose clients append each text), a message's text
*replaces* the text shown for its span: a partial covers the pass-1 text after the last refresh, a
refresh the utterance from its start, a final the whole utterance. After the last final the server sends
``{"mode", "wav_name", "text": "", "is_final": true, "is_end": true}``. Errors: ``{"error": "...",
"wav_name"}`` then a close frame with a code from :class:`CloseCode`.

Accepted but unused: ``chunk_size`` and ``chunk_interval`` (the model's own chunking applies: 600 ms
chunks with 300 ms look-ahead for the template), ``encoder_chunk_look_back`` and ``decoder_chunk_look_back``;
they are validated and logged. ``hotwords`` (FunASR's JSON ``{"phrase": weight}``, as an object or as its
text, or lines ``phrase weight``) bias this connection's search (`uniasr.hotwords`; a bad phrase is a 1007).
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from uniasr.stream.session import StreamEvent

log = logging.getLogger(__name__)

FUNASR_MODES = {"online": "fast", "2pass": "normal", "offline": "offline"}
MIN_AUDIO_FS = 4000
MAX_AUDIO_FS = 192_000
MAX_NAME_CHARS = 256
MAX_COUNT = 1000  # chunk_size entries, chunk_interval, look-backs (FunASR uses 0..10)
MAX_HOTWORDS_CHARS = 16384
PCM_FORMATS = frozenset({"pcm", "pcm16", "s16le", "raw"})
_FORMAT_RE = re.compile(r"^[a-z0-9]{1,10}$")  # any other format names a container (wav, mp3, flac, ...)


class CloseCode:
    """Websocket close codes the server uses (RFC 6455 section 7.4.1)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003  # binary before the start message, unknown wav_format
    INVALID_DATA = 1007  # malformed JSON, bad field values, undecodable audio
    POLICY = 1008  # bad token, limits (utterance length, file size), idle timeout
    TOO_BIG = 1009  # a message over max_message_bytes (sent by the websockets library)
    INTERNAL = 1011
    TRY_LATER = 1013  # server busy


class ProtocolError(ValueError):
    """A client error: the message goes to the client as ``{"error": ...}``, then the connection closes."""

    def __init__(self, message: str, code: int = CloseCode.INVALID_DATA) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StartMessage:
    """The first JSON message of a stream, validated. ``session_mode`` is ours (fast | normal | offline)."""

    mode: str  # FunASR's: online | 2pass | offline
    wav_name: str = "stream"
    wav_format: str = "pcm"
    audio_fs: int = 16000
    itn: bool = False
    chunk_size: tuple[int, int, int] = (5, 10, 5)
    chunk_interval: int = 10
    hotwords: str = ""

    @property
    def session_mode(self) -> str:
        return FUNASR_MODES[self.mode]

    @property
    def is_pcm(self) -> bool:
        return self.wav_format in PCM_FORMATS


def parse_json(text: str) -> dict[str, Any]:
    """A text frame -> its JSON object; `ProtocolError` (1007) for anything else.

    Python's parser also takes ``NaN``, ``Infinity`` and numbers like ``1e400`` (-> inf); the field
    validators below refuse them by name. Integers over 4,300 digits and very deep nesting are refused here.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProtocolError(f"malformed JSON message ({e}): {text[:80]!r}") from None
    except ValueError:  # Python's int digit limit (sys.get_int_max_str_digits)
        raise ProtocolError(f"a number with more than 4300 digits: {text[:80]!r}") from None
    except RecursionError:
        raise ProtocolError(f"JSON nested too deeply: {text[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a JSON object, got {type(obj).__name__}: {text[:80]!r}")
    return obj


def parse_start(msg: dict[str, Any]) -> StartMessage:
    """Validate a start message; each bad field is named with what would be valid.

    Known fields are checked (unknown ones are ignored, as FunASR's server does); every string that can
    reach a reply or a log must be valid Unicode (no lone surrogates such as ``"\\ud800"``).
    """
    mode = msg.get("mode", "2pass")
    if not isinstance(mode, str) or mode not in FUNASR_MODES:
        raise ProtocolError(f"mode={_show(mode)}; valid modes: {', '.join(FUNASR_MODES)}")
    wav_format = _wav_format(msg.get("wav_format", "pcm"))
    fs = _audio_fs(msg.get("audio_fs", 16000))
    itn = _flag(msg, "itn", False)
    _flag(msg, "is_speaking", True)
    name = msg.get("wav_name", "stream")
    if isinstance(name, bool) or not isinstance(name, (str, int)) or len(str(name)) > MAX_NAME_CHARS:
        raise ProtocolError(
            f"wav_name={_show(name)}: expected a string of at most {MAX_NAME_CHARS} characters"
        )
    name = _text(str(name), "wav_name")
    for key in ("encoder_chunk_look_back", "decoder_chunk_look_back"):
        if key in msg:
            _int_in(msg[key], key, -1, MAX_COUNT)
    start = StartMessage(
        mode=mode,
        wav_name=name,
        wav_format=wav_format,
        audio_fs=fs,
        itn=itn,
        chunk_size=_chunk_size(msg.get("chunk_size", [5, 10, 5])),
        chunk_interval=_int_in(msg.get("chunk_interval", 10), "chunk_interval", 1, MAX_COUNT),
        hotwords=_hotwords(msg.get("hotwords", "")),
    )
    return start


def check_control(msg: dict[str, Any]) -> None:
    """A message inside a stream (``{"is_speaking": false}``, or ``true``): its flags must be booleans."""
    _flag(msg, "is_speaking", True)
    _flag(msg, "is_end", False)


def _show(value: Any, limit: int = 60) -> str:
    """repr of a client's value, cut to `limit` characters (reprs escape lone surrogates)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text(value: str, name: str) -> str:
    """`value` if it encodes as UTF-8 (a JSON ``\\ud800`` escape gives a lone surrogate, which does not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ProtocolError(
            f"{name}={_show(value)}: character {e.start} is a lone UTF-16 surrogate; expected valid Unicode"
        ) from None
    return value


def _flag(msg: dict[str, Any], name: str, default: bool) -> bool:
    value = msg.get(name, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"{name}={_show(value)}: expected true or false")
    return value


def _wav_format(value: Any) -> str:
    if value is None or value == "":
        return "pcm"
    fmt = value.lower().lstrip(".") if isinstance(value, str) else ""
    if not _FORMAT_RE.match(fmt):
        raise ProtocolError(
            f"wav_format={_show(value, 40)}: expected 'pcm' or a container's extension (wav, mp3, ...)",
            CloseCode.UNSUPPORTED_DATA,
        )
    return fmt


def _audio_fs(value: Any) -> int:
    """An integer sample rate (16000 or 16000.0) in range; NaN, inf, strings and booleans are refused."""
    ok = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if isinstance(value, bool) or not ok:
        raise ProtocolError(f"audio_fs={_show(value)}: expected an integer sample rate in Hz")
    if not MIN_AUDIO_FS <= value <= MAX_AUDIO_FS:
        raise ProtocolError(
            f"audio_fs={_show(value)} is out of range; valid: {MIN_AUDIO_FS}..{MAX_AUDIO_FS} Hz"
        )
    return int(value)


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ProtocolError(f"{name}={_show(value)}: expected an integer in {low}..{high}")
    return value


def _chunk_size(value: Any) -> tuple[int, int, int]:
    """``[5, 10, 5]`` or FunASR's string form ``"5,10,5"`` -> (left, chunk, right) counts."""
    sizes: list[Any] = []
    if isinstance(value, str):
        parts = [v for v in value.replace(" ", "").split(",") if v]
        sizes = [int(v) if v.isascii() and v.isdigit() and len(v) <= 6 else v for v in parts]
    elif isinstance(value, list):
        sizes = value
    valid = len(sizes) == 3 and all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_COUNT for s in sizes
    )
    if not valid or sizes[1] == 0:
        raise ProtocolError(
            f"chunk_size={_show(value)}: expected three integers [left, chunk, right] in 0..{MAX_COUNT} "
            '(chunk > 0), e.g. [5, 10, 5] or "5,10,5"'
        )
    return tuple(sizes)


def _hotwords(value: Any) -> str:
    """A string (FunASR sends its JSON) or an object of word -> weight; returned as text (see
    `uniasr.serve.engine.Engine.hotword_graph`)."""
    if isinstance(value, str):
        if len(value) > MAX_HOTWORDS_CHARS:
            raise ProtocolError(f"hotwords: {len(value)} characters; at most {MAX_HOTWORDS_CHARS}")
        return _text(value, "hotwords")
    if isinstance(value, dict):
        for word, weight in value.items():
            good_weight = isinstance(weight, (int, float)) and not isinstance(weight, bool)
            if not good_weight or not math.isfinite(weight):
                raise ProtocolError(
                    f"hotwords[{_show(word, 40)}]={_show(weight)}: expected a number (the word's weight)"
                )
            _text(word, "hotwords key")
        return _hotwords(json.dumps(value, ensure_ascii=False))
    raise ProtocolError(f"hotwords={_show(value)}: expected a string or an object of word -> weight")


def is_end_of_speech(msg: dict[str, Any]) -> bool:
    """``{"is_speaking": false}`` (newer clients may add ``"is_end": true``)."""
    return msg.get("is_speaking") is False or msg.get("is_end") is True


# --- replies -------------------------------------------------------------------------------------------

_LABELS = {
    ("online", "partial"): "online",
    ("online", "final"): "online",
    ("2pass", "partial"): "2pass-online",
    ("2pass", "refresh"): "2pass-offline",
    ("2pass", "final"): "2pass-offline",
    ("offline", "final"): "offline",
}


def reply_label(funasr_mode: str, kind: str) -> str:
    """The reply ``mode`` of one of our events in a FunASR mode (see the module docstring)."""
    return _LABELS[(funasr_mode, kind)]


def event_message(start: StartMessage, event: StreamEvent) -> dict[str, Any]:
    """One of our stream events as a FunASR-style reply (plus ``event``, ``span``, ``utterance``)."""
    return {
        "mode": reply_label(start.mode, event.kind),
        "wav_name": start.wav_name,
        "text": event.text,
        "is_final": event.kind == "final",
        "timestamp": json.dumps([list(t) for t in event.timestamps]),
        "event": event.kind,
        "span": [event.start_ms, event.end_ms],
        "utterance": event.utterance,
    }


def offline_message(start: StartMessage, finals: list[StreamEvent]) -> dict[str, Any]:
    """The single reply of an offline stream: the utterances' texts joined, their segments listed."""
    stamps = [list(t) for e in finals for t in e.timestamps]
    return {
        "mode": reply_label(start.mode, "final"),
        "wav_name": start.wav_name,
        "text": "".join(e.text for e in finals),
        "is_final": True,
        "timestamp": json.dumps(stamps),
        "event": "final",
        "span": [finals[0].start_ms, finals[-1].end_ms] if finals else [0, 0],
        "utterance": 0,
        "segments": [
            {
                "start_ms": e.start_ms,
                "end_ms": e.end_ms,
                "text": e.text,
                "timestamp": [list(t) for t in e.timestamps],
            }
            for e in finals
        ],
    }


def end_message(start: StartMessage) -> dict[str, Any]:
    """The end acknowledgement after a stream's last result."""
    return {
        "mode": reply_label(start.mode, "final"),
        "wav_name": start.wav_name,
        "text": "",
        "is_final": True,
        "is_end": True,
    }


def error_message(error: str, wav_name: str | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"error": error}
    if wav_name is not None:
        msg["wav_name"] = wav_name
    return msg
