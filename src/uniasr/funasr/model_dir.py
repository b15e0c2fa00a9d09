"""FunASR 1.x and ModelScope 0.x model dirs: what they hold, read into our types, and FunASR 1.x dirs written.

A FunASR 1.x dir: config.yaml, model.pt, tokens.json, am.mvn. A pre-2024 ModelScope dir: config.yaml with an
inline token_list, model.pb, am.mvn, decoding.yaml, configuration.json. decoding.yaml (beam, token count
relax, mode, kana conversion) is read in either (spec §2, §4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uniasr.decode.tokens import check_token_list
from uniasr.funasr.files import ModelDirError, read_yaml, write_yaml
from uniasr.funasr.model_config import parse_config, write_config_yaml
from uniasr.funasr.state_dict import funasr_state_dict
from uniasr.model.config import DecodingDefaults, UniASRConfig

if TYPE_CHECKING:  # torch is imported where weights are written: model dirs parse without it
    import torch

__all__ = [
    "DECODING_FILE",
    "ModelDir",
    "ModelDirError",
    "read_config_yaml",
    "read_model_dir",
    "read_token_list",
    "save_model_dir",
    "write_decoding",
    "write_token_list",
]

CONFIG_FILE = "config.yaml"
TOKENS_FILE = "tokens.json"
CMVN_FILE = "am.mvn"
CHECKPOINT_NAMES = ("model.pt", "model.pb")
DECODING_FILE = "decoding.yaml"  # ModelScope decoding defaults; read in any model dir
MODELSCOPE_META = "configuration.json"


@dataclass(frozen=True)
class ModelDir:
    """Everything read from a model directory, in our own terms."""

    path: Path
    config: UniASRConfig
    tokens: tuple[str, ...]
    cmvn_path: Path
    checkpoint_path: Path
    decoding: DecodingDefaults
    layout: str  # "funasr" (1.x) or "modelscope" (0.x)


def read_model_dir(path: str | Path) -> ModelDir:
    """Inspect a FunASR 1.x or ModelScope 0.x model directory (no weights loaded yet)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelDirError(f"model directory {str(path)!r} does not exist or is not a directory")
    raw = read_config_yaml(path)
    tokens = _tokens(path, raw)
    cmvn = path / CMVN_FILE
    if not cmvn.is_file():
        raise ModelDirError(f"{path}: missing {CMVN_FILE} (CMVN statistics)")
    config = parse_config(raw, len(tokens))
    layout = "funasr" if (path / TOKENS_FILE).exists() else "modelscope"
    return ModelDir(path, config, tokens, cmvn, _checkpoint(path), _decoding(path), layout)


def read_config_yaml(model_dir: str | Path) -> dict:
    """The config.yaml mapping of a model dir, as FunASR wrote it."""
    cfg_path = Path(model_dir) / CONFIG_FILE
    if not cfg_path.is_file():
        raise ModelDirError(f"{model_dir}: missing {CONFIG_FILE}")
    return read_yaml(cfg_path)


# --- token lists --------------------------------------------------------------------------------------------


def _checked_tokens(tokens: Any, where: str, unique: bool) -> list[str]:
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ModelDirError(f"{where}: the token list must be a list of strings")
    try:
        check_token_list(tokens, where, unique=unique)
    except ValueError as e:
        raise ModelDirError(str(e)) from None
    return tokens


def read_token_list(path: str | Path, unique: bool = True) -> list[str]:
    """A tokens.json (JSON list of strings) or a text file with one token per line, checked against the
    UniASR conventions (`uniasr.decode.tokens.check_token_list`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ModelDirError(f"cannot read token list {path}: {e}") from e
    if path.suffix == ".json":
        try:
            tokens = json.loads(text)
        except ValueError as e:
            raise ModelDirError(f"cannot read {path}: not valid JSON ({e})") from e
    else:
        tokens = [line.split()[0] for line in text.splitlines() if line.strip()]
    return _checked_tokens(tokens, str(path), unique)


def write_token_list(tokens: list[str] | tuple[str, ...], path: str | Path) -> Path:
    """Write a tokens.json."""
    Path(path).write_text(json.dumps(list(tokens), ensure_ascii=False, indent=0), encoding="utf-8")
    return Path(path)


def _tokens(path: Path, raw: dict) -> tuple[str, ...]:
    """tokens.json, else config.yaml's inline token_list (ModelScope 0.x)."""
    if (path / TOKENS_FILE).exists():
        return tuple(read_token_list(path / TOKENS_FILE, unique=False))
    if isinstance(raw.get("token_list"), list):
        return tuple(_checked_tokens(raw["token_list"], f"{path / CONFIG_FILE}: token_list", unique=False))
    raise ModelDirError(f"{path}: no {TOKENS_FILE} and {CONFIG_FILE} has no inline token_list")


# --- decoding.yaml, checkpoint ------------------------------------------------------------------------------


def _decoding(path: Path) -> DecodingDefaults:
    f = path / DECODING_FILE
    if not f.exists():
        return DecodingDefaults()
    d = read_yaml(f)
    ind, dmode = int(d.get("decoding_ind", 0)), d.get("decoding_mode", "model2")
    mode = "fast" if dmode == "model1" else ("offline" if ind == 1 else "normal")
    flags = {key: d.get(key, default) for key, default in (("convert_kana", False), ("early_end", True))}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise ModelDirError(f"{f}: {key}={value!r}; expected true or false")
    weight, written = (_weight(f, d, key) for key in ("agreement_weight", "joint_written_weight"))
    order = d.get("agreement_order", 3)
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ModelDirError(f"{f}: agreement_order={order!r}; expected an integer >= 1")
    joint, bonus = d.get("joint_pass1_weight"), d.get("joint_length_bonus", 0.0)
    if joint is not None and (
        isinstance(joint, bool) or not isinstance(joint, int | float) or not 0 <= joint <= 1
    ):
        raise ModelDirError(f"{f}: joint_pass1_weight={joint!r}; expected a number in [0, 1]")
    if isinstance(bonus, bool) or not isinstance(bonus, int | float) or not abs(bonus) < float("inf"):
        raise ModelDirError(f"{f}: joint_length_bonus={bonus!r}; expected a finite number")
    return DecodingDefaults(
        int(d.get("beam_size", 5)), int(d.get("token_num_relax", 5)), mode, **flags,
        agreement_weight=weight, agreement_order=order,
        joint_pass1_weight=None if joint is None else float(joint), joint_length_bonus=float(bonus),
        joint_written_weight=written,
    )  # fmt: skip


def _weight(f: Path, d: dict[str, Any], key: str) -> float:
    """decoding.yaml's `key`: a number >= 0 (default 0)."""
    value = d.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ModelDirError(f"{f}: {key}={value!r}; expected a number >= 0")
    return float(value)


def write_decoding(model_dir: str | Path, decoding: DecodingDefaults) -> Path:
    """Write `decoding.yaml` into a model dir so that `read_model_dir` gives back `decoding`."""
    fields: dict[str, Any] = {
        "beam_size": decoding.beam_size,
        "token_num_relax": decoding.token_num_relax,
        "decoding_mode": "model1" if decoding.mode == "fast" else "model2",
        "decoding_ind": 1 if decoding.mode == "offline" else 0,
    }
    if decoding.convert_kana:
        fields["convert_kana"] = True
    if not decoding.early_end:
        fields["early_end"] = False
    if decoding.agreement_weight > 0:
        fields["agreement_weight"] = decoding.agreement_weight
        fields["agreement_order"] = decoding.agreement_order
    if decoding.joint_pass1_weight is not None:
        fields["joint_pass1_weight"] = decoding.joint_pass1_weight
        fields["joint_length_bonus"] = decoding.joint_length_bonus
    if decoding.joint_written_weight > 0:
        fields["joint_written_weight"] = decoding.joint_written_weight
    return write_yaml(fields, Path(model_dir) / DECODING_FILE)


def _checkpoint(path: Path) -> Path:
    names = list(CHECKPOINT_NAMES)
    meta = path / MODELSCOPE_META
    if meta.exists():
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            name = (info.get("model") or {}).get("am_model_name") or (info.get("file_path_metas") or {}).get(
                "init_param"
            )
            if isinstance(name, str):
                names.insert(0, name)
        except (OSError, ValueError) as e:
            raise ModelDirError(f"cannot read {meta}: {e}") from e
    for name in names:
        if (path / name).is_file():
            return path / name
    raise ModelDirError(f"{path}: no checkpoint file (looked for {', '.join(dict.fromkeys(names))})")


# --- writing FunASR 1.x model dirs --------------------------------------------------------------------------


def save_model_dir(
    model: torch.nn.Module,
    config: UniASRConfig,
    tokens: list[str] | tuple[str, ...],
    cmvn_path: str | Path,
    out_dir: str | Path,
    overwrite: bool = False,
) -> Path:
    """Write a FunASR 1.x model dir (config.yaml, model.pt, tokens.json, am.mvn)."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; refusing to overwrite a model dir")
    out.mkdir(parents=True, exist_ok=True)
    write_config_yaml(config, out / CONFIG_FILE)
    import torch

    torch.save(funasr_state_dict(model, config), out / CHECKPOINT_NAMES[0])
    write_token_list(tokens, out / TOKENS_FILE)
    if Path(cmvn_path).resolve() != (out / CMVN_FILE).resolve():
        (out / CMVN_FILE).write_bytes(Path(cmvn_path).read_bytes())
    return out
