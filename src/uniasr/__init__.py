"""uniasr: Japanese speech recognition with the UniASR two-pass model.

The public API, imported lazily so `import uniasr` (and `uniasr --help`) stays light:

- `load()` -> `Recognizer`; `Recognizer.transcribe(inputs, mode=..., search=SearchOptions(...),
  longform=LongformOptions(...), progress=...)` -> `Result`s (with `Segment`s and n-best `Alternative`s);
  `Mode` is the type of `mode`, `Progress` what `progress` is called with; `result_to_json` /
  `result_from_json` their JSON.
- `StreamingSession(rec, mode=..., endpoint=EndpointConfig(...))`: audio in pieces -> `StreamEvent`s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_WHERE = {
    "load": "uniasr.pipeline",
    "Recognizer": "uniasr.pipeline",
    "Progress": "uniasr.pipeline",
    "Result": "uniasr.result",
    "Segment": "uniasr.result",
    "Alternative": "uniasr.result",
    "result_to_json": "uniasr.result",
    "result_from_json": "uniasr.result",
    "Mode": "uniasr.model.modes",
    "SearchOptions": "uniasr.decode.search",
    "LongformOptions": "uniasr.longform",
    "StreamingSession": "uniasr.stream.session",
    "StreamEvent": "uniasr.stream.session",
    "EndpointConfig": "uniasr.stream.endpoint",
}
__all__ = [
    "Alternative", "EndpointConfig", "LongformOptions", "Mode", "Progress", "Recognizer", "Result",
    "SearchOptions", "Segment", "StreamEvent", "StreamingSession", "load", "result_from_json",
    "result_to_json", "__version__",
]  # fmt: skip

if TYPE_CHECKING:
    from uniasr.decode.search import SearchOptions
    from uniasr.longform import LongformOptions
    from uniasr.model.modes import Mode
    from uniasr.pipeline import Progress, Recognizer, load
    from uniasr.result import Alternative, Result, Segment, result_from_json, result_to_json
    from uniasr.stream.endpoint import EndpointConfig
    from uniasr.stream.session import StreamEvent, StreamingSession


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'uniasr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
