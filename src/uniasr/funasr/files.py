"""Reading the files of FunASR / ModelScope dirs: YAML mappings and torch files of plain tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ModelDirError(ValueError):
    """A model directory is missing files or holds something we cannot load."""


def read_yaml(path: str | Path) -> dict:
    """A YAML file holding a mapping (config.yaml, decoding.yaml); ModelDirError naming the file otherwise."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ModelDirError(f"cannot read {path}: {e}") from e
    if not isinstance(data, dict):
        raise ModelDirError(f"{path} is not a YAML mapping")
    return data


def write_yaml(data: dict, path: str | Path) -> Path:
    """Write a mapping as YAML, keys in their given order and non-ASCII text as is."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, allow_unicode=True, sort_keys=False)
    return Path(path)


def torch_load_problem(e: Exception) -> str:
    """What a failed `torch.load(weights_only=True)` says about the file, in our words: torch's own message
    advises loading with weights_only=False, which runs any code the file holds; never pass that on."""
    text = str(e)
    if "Weights only load failed" in text:
        found = [line.strip() for line in text.splitlines() if "unsupported" in line.lower()]
        detail = f" ({found[0]})" if found else ""
        if "GLOBAL" not in detail:
            return f"it is not a torch file{detail}"
        return (
            f"it holds Python objects other than tensors{detail}; uniasr loads only files of plain tensors "
            "(as `torch.save(model.state_dict())` writes them) and never runs code from a file"
        )
    if "central directory" in text or "zip archive" in text:
        return "it is truncated or damaged (its zip archive is incomplete); copy or save it again"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"it is not a torch file ({type(e).__name__}: {first})"


def read_state_dict(path: Path, what: str = "checkpoint") -> dict[str, Any]:
    """A torch file of plain tensors -> its state_dict, without the `{"state_dict": ...}` or `{"model": ...}`
    wrapper FunASR checkpoints may have. ModelDirError naming `what` and the file when it is not one."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for corrupt files
        raise ModelDirError(f"cannot read {what} {path}: {torch_load_problem(e)}") from e
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise ModelDirError(f"{what} {path} does not hold a state_dict")
    return state
