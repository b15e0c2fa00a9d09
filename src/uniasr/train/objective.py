"""The UniASR training objective (spec §7) on the model's own modules.

Per pass: CIF alphas from the chunked encoder (only centre rows fire), scaled so they sum to len(y)+1
(teacher-forcing the token count); a differentiable integrate-and-fire gives the acoustic embeddings; token k
fires at the first frame where floor(cumsum(scaled alphas)) >= k, and its chunk selects its SCAMA row
(training rounding: len(y)+1 rows); the decoder is teacher-forced with ys_in = [<s>]+y and scored against
ys_out = y+[</s>] with label-smoothed KL; the predictor loss is |Σα − (len(y)+1)| before scaling.
Total = w1·(KL1 + pw1·MAE1) + (1−w1)·(KL2 + pw2·MAE2), normalised by the number of target tokens
(length_normalized_loss) or utterances. Optionally (a uniasr training aid, not in the published objective)
+ ctc_weight·CTC on encoder 1's centre frames through a linear head that lives here, not in the model, so
the saved model dir is unchanged; it gives the encoder a frame-level signal when training from scratch.

Integrate-and-fire as a cumulative sum: with c_t = Σ_{s<=t} α_s, frame t gives token k the weight
|[c_t − α_t, c_t] ∩ [k−1, k]|. For α_t <= 1 this is FunASR's recurrence (including its gradients); tokens
whose interval is not complete (c_T < k) get a zero embedding, as FunASR pads unfired tokens with zeros.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from uniasr.decode.tokens import EOS, SOS
from uniasr.model.config import ChunkConfig
from uniasr.model.layout import ChunkGeometry, EncodedBlocks, merge_centres
from uniasr.model.uniasr import UniASR

FIRE_TOL = 1e-4  # float32 slack so that Σ scaled alphas = n - ε still fires token n
STATS = ("loss1", "kl1", "mae1", "correct1", "loss2", "kl2", "mae2", "correct2", "tokens", "utts", "ctc")


def label_smoothing_kl(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Per-row KL(q || softmax(logits)) with q = 1-s on the target and s/(V-1) elsewhere: [N, V], [N] -> [N].

    Equals ESPnet/FunASR `LabelSmoothingLoss` before its reduction (it keeps the entropy of q).
    """
    logp = torch.log_softmax(logits.float(), dim=-1)
    v = logp.shape[-1]
    conf, low = 1.0 - smoothing, smoothing / (v - 1)
    entropy = (conf * math.log(conf) if conf > 0 else 0.0) + (
        (v - 1) * low * math.log(low) if low > 0 else 0.0
    )
    at_target = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return entropy - low * (logp.sum(-1) - at_target) - conf * at_target


def cif_embeddings(hidden: torch.Tensor, alphas: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """hidden [B, T, D], alphas [B, T] (zero past each length) -> embeddings [B, num_tokens, D]."""
    c = torch.cumsum(alphas, dim=1)
    prev = c - alphas
    k = torch.arange(1, num_tokens + 1, device=alphas.device, dtype=alphas.dtype)
    weights = (torch.minimum(c.unsqueeze(-1), k) - torch.maximum(prev.unsqueeze(-1), k - 1)).clamp_min(0)
    fired = (c[:, -1:] + FIRE_TOL) >= k  # [B, L]
    weights = weights * fired.unsqueeze(1).to(weights.dtype)
    return torch.einsum("btl,btd->bld", weights, hidden)


def fire_frames(alphas: torch.Tensor, num_frames: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """First frame t with floor(cumsum(alphas)[t]) >= k, for k = 1..num_tokens: [B, num_tokens] long.

    A token that never fires gets the utterance's last frame (FunASR clips the same way).
    """
    c = torch.floor(torch.cumsum(alphas.detach(), dim=1) + FIRE_TOL).contiguous()
    k = torch.arange(1, num_tokens + 1, device=c.device, dtype=c.dtype).expand(c.shape[0], -1).contiguous()
    idx = torch.searchsorted(c, k, side="left")
    return torch.minimum(idx, (num_frames - 1).unsqueeze(1))


def scama_train_mask(
    layouts: Sequence[ChunkGeometry], token_blocks: torch.Tensor, chunk: ChunkConfig, rows: int
) -> torch.Tensor:
    """Cross-attention mask [B, L, rows] bool over each utterance's flattened blocks [N*C] (spec §3.5.1).

    Token k sees the valid rows of its block and the centre rows of the `decoder_look_back` blocks before.
    """
    device = token_blocks.device
    r = torch.arange(rows, device=device)
    rb, rp = r // chunk.chunk_size, r % chunk.chunk_size
    row_ok = pad_sequence(
        [torch.from_numpy(lay.valid_rows().reshape(-1)) for lay in layouts], batch_first=True
    )
    row_ok = nn.functional.pad(row_ok, (0, rows - row_ok.shape[1])).to(device)
    tb = token_blocks.unsqueeze(-1)
    own = rb == tb
    centre = (rp >= chunk.pad_left) & (rp < chunk.pad_left + chunk.stride)
    back = (rb < tb) & (rb >= tb - chunk.decoder_look_back) & centre
    return (own | back) & row_ok.unsqueeze(1)


def teacher_forcing(targets: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """ys_in = [<s>] + y (padded with </s>), ys_out = y + [</s>] (padded with -1): [B, max len(y)+1] each."""
    sos = [torch.cat([y.new_full((1,), SOS), y]) for y in targets]
    eos = [torch.cat([y, y.new_full((1,), EOS)]) for y in targets]
    return pad_sequence(sos, batch_first=True, padding_value=EOS), pad_sequence(
        eos, batch_first=True, padding_value=-1
    )


def _stat_row(*values: torch.Tensor) -> torch.Tensor:
    return torch.stack([v.detach().double() for v in values]).cpu()


class TrainingObjective(nn.Module):
    """Wraps a UniASR model; `forward` returns the (scaled) summed loss and per-batch sums (`STATS`).

    freeze_pass1: encoder 1, predictor 1 and decoder 1 are not trained (FunASR `enable_maas_finetune`);
    freeze_encoder2: the stride conv and encoder 2 are not trained and pass 2's loss does not reach
    encoder 1 (FunASR `freeze_encoder2`). Frozen modules get `requires_grad_(False)` here.
    ctc_weight: weight of the auxiliary CTC loss on encoder 1 (0 = none, FunASR's objective).
    """

    def __init__(
        self,
        model: UniASR,
        freeze_pass1: bool = False,
        freeze_encoder2: bool = False,
        ctc_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.freeze_pass1, self.freeze_encoder2 = freeze_pass1, freeze_encoder2
        frozen = [model.encoder, model.predictor, model.decoder] if freeze_pass1 else []
        frozen += [model.stride_conv, model.encoder2] if freeze_encoder2 else []
        for module in frozen:
            module.requires_grad_(False)
        if ctc_weight < 0 or (ctc_weight > 0 and freeze_pass1):
            raise ValueError(f"ctc_weight={ctc_weight} must be >= 0 and needs a trainable encoder 1")
        self.ctc_weight = ctc_weight
        self.ctc = nn.Linear(model.cfg.encoder.output_dim, model.cfg.vocab_size) if ctc_weight > 0 else None
        loss = model.cfg.loss
        if not 0.0 <= loss.loss_weight_model1 <= 1.0:
            raise ValueError(f"loss_weight_model1={loss.loss_weight_model1} must be in [0, 1]")
        for pred in (model.cfg.predictor, model.cfg.predictor2):
            if pred.threshold != 1.0:
                raise ValueError(f"CIF threshold {pred.threshold} unsupported in training (need 1.0)")

    def normaliser(self, targets: Sequence[torch.Tensor]) -> int:
        """This batch's loss denominator: target tokens (len(y)+1 each) or utterances."""
        if self.model.cfg.loss.length_normalized_loss:
            return sum(int(t.shape[0]) + 1 for t in targets)
        return len(targets)

    def pass_loss(
        self,
        pass_index: int,
        encoded: list[EncodedBlocks[torch.Tensor]],
        targets: Sequence[torch.Tensor],
        ind: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (summed KL, summed |Σα − (len(y)+1)|, number of correctly predicted targets) of one pass."""
        encoder, predictor, decoder = self.model.pass_modules(pass_index)
        chunk = encoder.cfg.chunk(ind)
        layouts = [e.layout for e in encoded]
        device = encoded[0].blocks.device
        with torch.autocast(device.type, enabled=False):  # FunASR runs the CIF in float32
            blocks = torch.cat([e.blocks for e in encoded]).float()
            valid = torch.from_numpy(np.concatenate([lay.valid_rows() for lay in layouts])).to(device)
            centre = torch.from_numpy(np.concatenate([lay.centre_rows() for lay in layouts])).to(device)
            alpha_blocks = predictor.alphas(blocks, valid, centre)
            alpha_rows, hidden_rows, start = [], [], 0
            for lay in layouts:
                part = slice(start, start + lay.num_blocks)
                alpha_rows.append(merge_centres(alpha_blocks[part].unsqueeze(-1), lay).squeeze(-1))
                hidden_rows.append(merge_centres(blocks[part], lay))
                start += lay.num_blocks
            alphas = pad_sequence(alpha_rows, batch_first=True)
            hidden = pad_sequence(hidden_rows, batch_first=True)
            target_len = torch.tensor([t.shape[0] + 1 for t in targets], device=device, dtype=torch.float32)
            token_num = alphas.sum(dim=1)
            scaled = alphas * (target_len / token_num.clamp_min(1e-4)).unsqueeze(1)
            num_tokens = int(target_len.max().item())
            embeds = cif_embeddings(hidden, scaled, num_tokens)
            num_frames = torch.tensor([lay.num_frames for lay in layouts], device=device)
            frames = fire_frames(scaled, num_frames, num_tokens)
            mae = (target_len - token_num).abs().sum()
        memory = pad_sequence([e.blocks.reshape(-1, e.blocks.shape[-1]) for e in encoded], batch_first=True)
        mask = scama_train_mask(layouts, frames // chunk.stride, chunk, memory.shape[1])
        ys_in, ys_out = teacher_forcing(targets)
        logits = decoder(ys_in, embeds.to(decoder.embed.weight.dtype), memory, mask)
        keep = ys_out >= 0
        logits, ys_out = logits[keep], ys_out[keep]
        kl = label_smoothing_kl(logits, ys_out, self.model.cfg.loss.lsm_weight).sum()
        correct = (logits.detach().argmax(-1) == ys_out).sum()
        return kl, mae, correct

    def ctc_loss(
        self, encoded: list[EncodedBlocks[torch.Tensor]], targets: Sequence[torch.Tensor]
    ) -> torch.Tensor:
        """Summed CTC loss (blank 0) of the auxiliary head over each utterance's centre frames."""
        assert self.ctc is not None
        hidden = pad_sequence([merge_centres(e.blocks, e.layout) for e in encoded], batch_first=True)
        logp = torch.log_softmax(self.ctc(hidden).float(), dim=-1).transpose(0, 1)  # [T, B, V]
        lengths = torch.tensor([e.layout.num_frames for e in encoded])
        return nn.functional.ctc_loss(
            logp, torch.cat(list(targets)), lengths, torch.tensor([len(t) for t in targets]),
            blank=0, reduction="sum", zero_infinity=True,
        )  # fmt: skip

    def forward(
        self, feats: list[torch.Tensor], targets: list[torch.Tensor], ind: int, scale: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats: [T_i, F] CMVN'd LFR features; targets: [L_i] token ids; ind: chunk-list entry for both
        encoders. Returns (summed loss * scale, stats [len(STATS)] float64 sums, detached)."""
        model, loss_cfg = self.model, self.model.cfg.loss
        w1 = loss_cfg.loss_weight_model1
        stats = torch.zeros(len(STATS), dtype=torch.float64)
        total = torch.zeros((), device=feats[0].device)
        enc1, enc2 = model(feats, ind, second_pass=w1 < 1, detach_first=self.freeze_encoder2)
        if w1 > 0:
            kl, mae, correct = self.pass_loss(1, enc1, targets, ind)
            loss1 = kl + loss_cfg.predictor_weight * mae
            total = total + w1 * loss1
            stats[0:4] = _stat_row(loss1, kl, mae, correct)
        if self.ctc is not None:
            ctc = self.ctc_loss(enc1, targets)
            total = total + self.ctc_weight * ctc
            stats[10] = float(ctc.detach())
        if enc2 is not None:
            kl, mae, correct = self.pass_loss(2, enc2, targets, ind)
            loss2 = kl + loss_cfg.predictor2_weight * mae
            total = total + (1.0 - w1) * loss2
            stats[4:8] = _stat_row(loss2, kl, mae, correct)
        stats[8] = sum(int(t.shape[0]) + 1 for t in targets)
        stats[9] = len(targets)
        return total * scale, stats
