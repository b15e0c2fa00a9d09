"""Validation during training (dev loss and greedy-decoding CER) and the `uniasr eval` scoring helpers."""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence

import torch

from uniasr.audio.features import Frontend
from uniasr.cer import ErrorCounts, NormalizeOptions, align, normalize_text
from uniasr.decode.search import SearchOptions, hypothesis_tokens
from uniasr.decode.tokens import TokenTable
from uniasr.model.uniasr import UniASR
from uniasr.pipeline import Recognizer

log = logging.getLogger(__name__)


def greedy_texts(rec: Recognizer, feats: Sequence[torch.Tensor], mode: str) -> list[str]:
    """Greedy decoding (beam 1) of CMVN'd feature matrices with the pipeline's search -> texts."""
    decoded = rec.decode_features(
        [f.to(rec.device) for f in feats], mode, SearchOptions(beam_size=1, nbest=1)
    )
    table = rec.tokens
    return [table.detokenize(table.to_tokens(hypothesis_tokens(h[0]))) if h else "" for _, h in decoded]


def count_errors(refs: Sequence[str], hyps: Sequence[str], opts: NormalizeOptions) -> ErrorCounts:
    total = ErrorCounts()
    for ref, hyp in zip(refs, hyps):
        total = total + align(normalize_text(ref, opts), normalize_text(hyp, opts))
    return total


class DevDecoder:
    """Dev-set CER during training: greedy decoding of a frozen copy of the model (the training model is
    left untouched). If decoding on the training device fails, it falls back to the CPU for the run."""

    def __init__(self, tokens: Sequence[str], frontend: Frontend, mode: str) -> None:
        self.table, self.frontend, self.mode = TokenTable(tokens), frontend, mode
        self.opts = NormalizeOptions()
        self.cpu_fallback = False

    def recognizer(self, model: UniASR, device: torch.device) -> Recognizer:
        """A Recognizer over a copy of `model` (call once per validation)."""
        dev = torch.device("cpu") if self.cpu_fallback else device
        return Recognizer(copy.deepcopy(model), self.frontend, self.table, device=dev)

    def errors(self, rec: Recognizer, feats: Sequence[torch.Tensor], refs: Sequence[str]) -> ErrorCounts:
        try:
            texts = greedy_texts(rec, feats, self.mode)
        except RuntimeError as e:
            if rec.device.type == "cpu" or rec.model is None:
                raise
            log.warning("dev CER: decoding on %s failed (%s); decoding on the CPU from now on", rec.device, e)
            self.cpu_fallback = True
            rec.model.to("cpu")
            rec.device = torch.device("cpu")
            texts = greedy_texts(rec, feats, self.mode)
        return count_errors(refs, texts, self.opts)


def format_report(total: ErrorCounts, per_key: dict[str, ErrorCounts], missing: Sequence[str]) -> str:
    """One-line summary plus counts, in the style of `uniasr.cer.main_eval_texts`."""
    lines = [
        f"CER {100.0 * total.cer:.2f}%  [errors {total.errors} / N {total.reference_length}: "
        f"S={total.substitutions} D={total.deletions} I={total.insertions}]",
        f"utterances: {len(per_key)} scored, {len(missing)} without hypothesis",
    ]
    if missing:
        lines.append("missing: " + ", ".join(list(missing)[:10]) + (" ..." if len(missing) > 10 else ""))
    return "\n".join(lines)
