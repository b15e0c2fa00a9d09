"""Shared fixtures: paths to the FunASR reference fixtures copied into tests/fixtures/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
INPUTS = FIXTURES / "inputs"
UNIASR_FIXTURES = ("funasr_uniasr_tiny", "funasr_uniasr_lookback")
STEMS = ("short_0_7s", "speech_10s", "long_35s")
MODES = ("fast", "normal", "offline")


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # tiny test models: a second thread only adds synchronisation


def modelscope_dir(fixture: str, tmp_root: Path) -> Path:
    """Rebuild the ModelScope 0.x dir (its model.pb is a byte copy of model_dir/model.pt)."""
    out = tmp_root / f"{fixture}_modelscope_0x"
    if not out.exists():
        shutil.copytree(FIXTURES / fixture / "model_dir_modelscope_0x", out)
        shutil.copyfile(FIXTURES / fixture / "model_dir" / "model.pt", out / "model.pb")
    return out


@pytest.fixture(scope="session")
def ms_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("modelscope")
    return {fx: modelscope_dir(fx, root) for fx in UNIASR_FIXTURES}


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    return FIXTURES / "funasr_uniasr_tiny" / "model_dir"


@pytest.fixture(scope="session")
def tiny_recognizer(tiny_dir):
    import uniasr

    return uniasr.load(tiny_dir)
