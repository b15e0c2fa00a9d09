"""uniasr: Japanese speech recognition with the UniASR two-pass model.

The public API, imported lazily so `import uniasr` (and `uniasr --help`) stays light:
`load()`, `Recognizer`, `Result`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load", "Recognizer", "Result", "__version__"]

if TYPE_CHECKING:
    from uniasr.pipeline import Recognizer, Result, load


def __getattr__(name: str) -> Any:
    if name in ("load", "Recognizer", "Result"):
        from uniasr import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'uniasr' has no attribute {name!r}")
