"""Resolve what `--model` names: a local model dir, the bundled default, or (opt-in) a hub download."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from uniasr.funasr.files import ModelDirError

log = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).parent / "models" / "default"
ONNX_SUBDIR = "onnx"  # a model dir's own ONNX export (the bundled one: recipes/synth_ja/bundle_onnx.py)
ALLOW_DOWNLOAD_ENV = "UNIASR_ALLOW_DOWNLOAD"


def onnx_export_of(model_dir: str | os.PathLike) -> Path | None:
    """`model_dir/onnx` when it holds an export made by `uniasr export --format onnx`, else None."""
    from uniasr.backends.export_dir import is_export_dir

    path = Path(model_dir) / ONNX_SUBDIR
    return path if is_export_dir(path) else None


def default_model_dir() -> Path | None:
    """The model bundled with the package, if this build ships one."""
    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / "config.yaml").is_file() else None


def resolve_model(name: str | os.PathLike | None, allow_download: bool | None = None) -> Path:
    """Model name or path -> local model directory.

    None -> the bundled default model. An existing directory -> itself. A ModelScope id such as
    `iic/speech_UniASR_asr_2pass-ja-16k-common-vocab93-tensorflow1-offline` is downloaded with the
    `modelscope` package only when `allow_download` (or the environment variable UNIASR_ALLOW_DOWNLOAD=1)
    says so; nothing is ever fetched implicitly.
    """
    if name is None:
        found = default_model_dir()
        if found is None:
            raise ModelDirError(
                "this build of uniasr bundles no default model yet; pass a model dir (--model DIR)"
            )
        return found
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    text = str(name)
    if allow_download is None:
        allow_download = os.environ.get(ALLOW_DOWNLOAD_ENV) == "1"
    if text.count("/") == 1 and not path.exists() and not text.startswith((".", "/")):
        if not allow_download:
            raise ModelDirError(
                f"{text!r} is not a local directory; to download it from ModelScope set "
                f"{ALLOW_DOWNLOAD_ENV}=1 (needs `pip install modelscope` and network access)"
            )
        return _download(text)
    raise ModelDirError(f"model directory {text!r} does not exist")


def _download(model_id: str) -> Path:  # pragma: no cover - needs network
    try:
        from modelscope import snapshot_download
    except ImportError as e:
        raise ModelDirError(
            "downloading models needs the `modelscope` package: pip install modelscope"
        ) from e
    log.info("downloading %s from ModelScope", model_id)
    return Path(snapshot_download(model_id))
