"""``load_vad``: one entry point that names a backend or points at a model dir."""

from __future__ import annotations

from pathlib import Path

from uniasr.vad.base import VoiceActivityDetector

__all__ = ["load_vad"]

_FORMS = (
    "'silero', 'silero:8000', 'energy', 'fsmn:<model dir>' or the path of a FunASR fsmn-vad model dir; "
    "'silero+level' (or 'silero:8000+level') adds the level rescue"
)


def load_vad(name_or_dir: str = "silero") -> VoiceActivityDetector:
    """Build a detector.

    Args:
        name_or_dir: ``"silero"`` (default, 16 kHz; ``"silero:8000"`` for 8 kHz), ``"energy"``,
            ``"fsmn:<dir>"``, or a directory holding a FunASR fsmn-vad model (``config.yaml``,
            ``model.pt``, ``am.mvn``). ``"silero+level"`` (``"silero:8000+level"``): Silero, plus what is
            clearly louder than the recording's quiet floor
            (:class:`~uniasr.vad.level_rescue.LevelRescueVad`).
    """
    spec = str(name_or_dir).strip()
    lowered = spec.lower()
    if lowered.endswith("+level") and lowered.startswith("silero"):
        from uniasr.vad.level_rescue import LevelRescueVad
        from uniasr.vad.silero import SileroVad

        inner = load_vad(spec[: -len("+level")])
        assert isinstance(inner, SileroVad)
        return LevelRescueVad(inner)
    if lowered == "silero" or lowered.startswith("silero:"):
        from uniasr.vad.silero import SileroVad

        rate = lowered.partition(":")[2] or "16000"
        if not rate.isdigit():
            raise ValueError(
                f"VAD spec {spec!r}: {rate!r} is not a sample rate; use 'silero:16000' or 'silero:8000'"
            )
        return SileroVad(sample_rate=int(rate))
    if lowered == "energy":
        from uniasr.vad.energy import EnergyVad

        return EnergyVad()
    if lowered.startswith("fsmn:"):
        return _load_fsmn(Path(spec[len("fsmn:") :]))
    path = Path(spec)
    if path.is_dir():
        # a model dir: FSMN-VAD is the only dir format; read_fsmn_vad_dir names any missing file
        return _load_fsmn(path)
    if "/" in spec or "\\" in spec or path.suffix:
        raise FileNotFoundError(f"VAD model dir {spec!r} does not exist; valid VAD specs: {_FORMS}")
    raise ValueError(f"unknown VAD {spec!r}; valid VAD specs: {_FORMS}")


def _load_fsmn(path: Path) -> VoiceActivityDetector:
    from uniasr.vad.fsmn import FsmnVad

    return FsmnVad.from_dir(path)
