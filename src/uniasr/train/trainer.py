"""The training loop: Adam + warm-up, gradient clipping, bf16 autocast, DDP, exact resume, validation,
early stopping, checkpoint rotation and best-N averaging into a FunASR 1.x model dir.

``exp_dir`` holds: train.log, metrics.jsonl (one JSON object per log interval / validation),
train_config.json, tokens.json, am.mvn, model_config.yaml, bad_data.txt, checkpoints/, tensorboard/ and the
final model/.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from uniasr.audio.features import Frontend
from uniasr.decode.tokens import TokenTable
from uniasr.funasr.model_dir import DECODING_FILE, save_model_dir
from uniasr.funasr.state_dict import load_funasr_state_dict
from uniasr.model.uniasr import UniASR, mode_settings
from uniasr.train import checkpoint as ckpt
from uniasr.train.augment import NO_AUGMENT
from uniasr.train.batching import (
    Batch,
    ShardStream,
    StreamPosition,
    UtteranceDataset,
    plan_batches,
    small_epoch_plan,
    small_loader,
    stream_loader,
)
from uniasr.train.config import TrainConfig
from uniasr.train.data import BadDataError, DataIssue
from uniasr.train.distributed import all_reduce_sum, barrier, cleanup, gather_objects, setup
from uniasr.train.evaluate import DevDecoder
from uniasr.train.features import FeatureMaker
from uniasr.train.metrics import MetricsSink, summarize
from uniasr.train.objective import STATS, TrainingObjective
from uniasr.train.prepare import PreparedData, prepare
from uniasr.train.step import WarmupLR, forward_backward

log = logging.getLogger(__name__)

MIN_IMPROVEMENT = 1e-4  # early stopping: a dev loss must beat the best by this fraction to count


@dataclass
class TrainState:
    """Everything about progress that a checkpoint restores (besides weights, optimiser and RNG)."""

    epoch: int = 0
    step: int = 0
    epoch_batches: int = 0
    stream_consumed: dict[int, int] = field(default_factory=dict)
    stream_next: int = 0
    stream_workers: int = 1
    history: list[dict] = field(default_factory=list)
    snapshots: list[list] = field(default_factory=list)  # [dev loss or None, step] of kept model snapshots
    best_loss: float | None = None
    bad_epochs: int = 0
    skipped_steps: int = 0


@dataclass
class TrainResult:
    exp_dir: Path
    model_dir: Path | None
    state: TrainState
    model: UniASR | None = None  # the final (averaged) model on the CPU, rank 0 only


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.exp = Path(cfg.exp_dir)
        self.info = setup(cfg.device)
        self.state = TrainState()
        self.sink: MetricsSink | None = None
        self._resume_payload: dict | None = None  # checked while choosing the checkpoint to resume
        self.stop_reason = ""

    # --- set-up -------------------------------------------------------------------------------------------

    def _resume_path(self) -> Path | None:
        latest = ckpt.latest_checkpoint(self.exp)
        if self.cfg.resume is None:
            if latest is not None:
                raise ValueError(
                    f"{self.exp} already has checkpoints ({latest.name}); pass --resume to continue it "
                    "or choose another --exp-dir"
                )
            return None
        if self.cfg.resume == "auto":  # the newest checkpoint that loads (a broken newer one is skipped)
            found = ckpt.latest_loadable(self.exp)
            if found is None:
                return None
            self._resume_payload = found[1]
            return found[0]
        return Path(self.cfg.resume)

    def _build(self, data: PreparedData) -> None:
        cfg, info = self.cfg, self.info
        torch.manual_seed(cfg.seed)
        model = UniASR(data.config)
        if data.init_checkpoint is not None and self.resume_from is None:
            load_funasr_state_dict(model, data.init_checkpoint, data.config)
            log.info("initialised from %s", data.init_checkpoint)
        if cfg.freeze_pass1 and data.config.loss.loss_weight_model1 >= 1.0:
            raise ValueError("--freeze-pass1 with loss_weight_model1=1 leaves nothing to train")
        self.objective = TrainingObjective(model, cfg.freeze_pass1, cfg.freeze_encoder2, cfg.ctc_weight).to(
            info.device
        )
        self.model = model
        w1 = data.config.loss.loss_weight_model1
        self.net: torch.nn.Module = self.objective
        if info.enabled:
            self.net = DistributedDataParallel(
                self.objective,
                device_ids=[info.device.index] if info.device.type == "cuda" else None,
                find_unused_parameters=w1 in (0.0, 1.0),
            )
        self.params = [p for p in self.objective.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("every parameter is frozen: nothing to train")
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, WarmupLR(cfg.warmup_steps))
        self.amp = cfg.amp == "bf16" or (
            cfg.amp == "auto" and info.device.type == "cuda" and torch.cuda.is_bf16_supported()
        )
        torch.manual_seed(cfg.seed + 1 + info.rank)  # dropout streams differ per rank
        n = sum(p.numel() for p in self.params)
        log.info("model: %.2f M trainable parameters; device %s; bf16 %s", n / 1e6, info.device, self.amp)

    def _load(self, path: Path) -> None:
        payload = self._resume_payload or ckpt.load_checkpoint(path)
        self._resume_payload = None
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as e:
            raise ValueError(f"checkpoint {path} does not fit this model config: {e}") from None
        if (self.objective.ctc is None) != ("ctc" not in payload):
            was = "with" if "ctc" in payload else "without"
            raise ValueError(f"{path} was trained {was} --ctc-weight; resume it {was} that option")
        if self.objective.ctc is not None:
            self.objective.ctc.load_state_dict(payload["ctc"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.state = TrainState(**payload["state"])
        rng = payload["rng"]
        if len(rng) == self.info.world:
            ckpt.set_rng_state(rng[self.info.rank])
        else:
            log.warning(
                "checkpoint was written by %d processes, now %d: RNG streams restart",
                len(rng),
                self.info.world,
            )
        log.info("resumed from %s (epoch %d, step %d)", path, self.state.epoch, self.state.step)

    def _save(self) -> None:
        rng = gather_objects(ckpt.rng_state(), self.info)
        if self.info.is_main:
            payload = {
                "format": "uniasr-train-1",
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "state": asdict(self.state),
                "rng": rng,
            }
            if self.objective.ctc is not None:
                payload["ctc"] = self.objective.ctc.state_dict()
            ckpt.atomic_save(payload, ckpt.checkpoint_path(self.exp, self.state.step))
            ckpt.prune_checkpoints(self.exp, self.cfg.keep_checkpoints)
        barrier(self.info)

    # --- data -----------------------------------------------------------------------------------------------

    def _report_skipped(self, issues: list[DataIssue]) -> None:
        if not issues:
            return
        if self.cfg.on_bad_data == "error":
            raise BadDataError(issues, "training data")
        for issue in issues:
            log.warning("skipped %s", issue)
        if self.info.is_main:
            with open(self.exp / "bad_data.txt", "a", encoding="utf-8") as f:
                f.writelines(f"{i}\n" for i in issues)

    def _epoch_loader(self):
        cfg, st, info = self.cfg, self.state, self.info
        if cfg.dataset_type == "small":
            plan = small_epoch_plan(
                self.train_set.lengths, cfg.batch, cfg.seed, st.epoch, info.rank, info.world
            )
            return small_loader(self.train_set, plan, st.epoch, st.epoch_batches, cfg.num_workers), len(plan)
        workers = max(cfg.num_workers, 1)
        position = StreamPosition(dict(st.stream_consumed), st.stream_next)
        if st.stream_workers != workers and st.epoch_batches:
            log.warning("num_workers changed since the checkpoint: restarting epoch %d's stream", st.epoch)
            position, st.epoch_batches = StreamPosition(), 0
        stream = ShardStream(
            self.data.shards,
            self.maker,
            self.tokenizer,
            cfg.batch,
            cfg.seed,
            st.epoch,
            info.rank,
            info.world,
            position,
        )
        self.position, st.stream_workers = position, workers
        return stream_loader(stream, cfg.num_workers), None

    def _draw(self, iterator) -> list[Batch]:
        out = []
        for _ in range(self.cfg.accum_grad):
            batch = next(iterator, None)
            if batch is None:
                break
            self.state.epoch_batches += 1
            if self.cfg.dataset_type == "large":
                self.position.advance(batch.worker, self.state.stream_workers)
                self.state.stream_consumed = dict(self.position.consumed)
                self.state.stream_next = self.position.next_worker
            self._report_skipped(batch.skipped)
            out.append(batch)
        return out

    # --- the loop -------------------------------------------------------------------------------------------

    def _draw_ind(self, micro: int) -> int:
        num = len(self.model.cfg.encoder.chunks)
        return int(np.random.default_rng([self.cfg.seed & 0xFFFFFFFF, self.state.step, micro]).integers(num))

    def _optimizer_step(self) -> float:
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        if torch.isfinite(norm):
            self.optimizer.step()
            self.scheduler.step()
        else:
            self.state.skipped_steps += 1
            log.warning("step %d: gradient norm is %s; update skipped", self.state.step, float(norm))
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def _train_epoch(self, bar) -> bool:
        """One epoch (or what is left of it). Returns False when max_steps stopped training."""
        cfg, info, st = self.cfg, self.info, self.state
        loader, total = self._epoch_loader()
        bar.reset(total=total)
        bar.update(st.epoch_batches)
        bar.set_description(f"epoch {st.epoch + 1}")
        iterator, interval, t0 = iter(loader), torch.zeros(len(STATS), dtype=torch.float64), time.time()
        while True:
            if cfg.max_steps is not None and st.step >= cfg.max_steps:
                return False
            batches = self._draw(iterator)
            flags = torch.tensor([float(bool(batches)), float(any(len(b) == 0 for b in batches))])
            flags = all_reduce_sum(flags, info)
            if flags[0] < info.world:
                return True
            if flags[1] > 0:
                log.warning("step %d: a batch has no usable utterance; step skipped", st.step)
                continue
            inds = [self._draw_ind(i) for i in range(len(batches))]
            for b in batches:
                b.to(info.device)
            interval += forward_backward(self.net, self.objective, batches, inds, info, self.amp)
            norm = self._optimizer_step()
            st.step += 1
            bar.update(len(batches))
            if st.step % cfg.log_every == 0:
                self._log_train(interval, norm, time.time() - t0)
                interval, t0 = torch.zeros(len(STATS), dtype=torch.float64), time.time()
            if cfg.save_every_steps and st.step % cfg.save_every_steps == 0:
                self._save()

    def _log_train(self, interval: torch.Tensor, norm: float, seconds: float) -> None:
        values = summarize(all_reduce_sum(interval, self.info), self.model.cfg.loss)
        values.update(lr=float(self.scheduler.get_last_lr()[0]), grad_norm=norm, seconds=round(seconds, 3))
        log.info(
            "epoch %d step %d: loss %.4f (pass1 %.4f, pass2 %.4f) acc %.3f/%.3f lr %.3g%s",
            self.state.epoch + 1,
            self.state.step,
            values["loss"],
            values["loss1"],
            values["loss2"],
            values["acc1"],
            values["acc2"],
            values["lr"],
            f" ctc {values['ctc']:.4f}" if "ctc" in values else "",
        )
        self._write_metrics("train", self.state.step, self.state.epoch, values)

    def _write_metrics(self, kind: str, step: int, epoch: int, values: dict) -> None:
        if self.sink is None:
            raise RuntimeError("the metrics sink opens when training starts")
        self.sink.write(kind, step, epoch, values)

    # --- validation, snapshots, the end ---------------------------------------------------------------------

    def _validate(self) -> dict:
        if self.dev_set is None:
            return {}
        cfg, info = self.cfg, self.info
        plan = plan_batches(self.dev_set.lengths, cfg.batch.batch_bins, cfg.batch.max_utts)[
            info.rank :: info.world
        ]
        sums, errs = torch.zeros(len(STATS), dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
        limit = None if cfg.dev_cer_max_utts is None else -(-cfg.dev_cer_max_utts // info.world)
        decoded = 0
        rec = self.dev_decoder.recognizer(self.model, info.device) if cfg.dev_cer else None
        self.objective.eval()
        with torch.no_grad():
            for batch in small_loader(self.dev_set, plan, 0, 0, cfg.num_workers):
                for issue in batch.skipped:
                    log.warning("dev: skipped %s", issue)
                if not len(batch):
                    continue
                batch.to(info.device)
                sums += self.objective(batch.feats, batch.targets, self.dev_ind, 1.0)[1]
                if rec is not None and (limit is None or decoded < limit):
                    c = self.dev_decoder.errors(rec, batch.feats, batch.texts)
                    decoded += len(batch)
                    errs += torch.tensor([c.substitutions, c.deletions, c.insertions, c.reference_length])
        self.objective.train()
        values = summarize(all_reduce_sum(sums, info), self.model.cfg.loss)
        out = {f"dev_{k}": v for k, v in values.items()}
        errs = all_reduce_sum(errs, info)
        if cfg.dev_cer and errs[3] > 0:
            out.update(
                dev_cer=float(errs[:3].sum() / errs[3]),
                dev_sub=int(errs[0]),
                dev_del=int(errs[1]),
                dev_ins=int(errs[2]),
                dev_chars=int(errs[3]),
            )
        return out

    def _snapshot(self, dev: dict) -> None:
        """Keep this model as an averaging candidate if it is among the best `avg_best` (or the latest)."""
        st, keep = self.state, max(self.cfg.avg_best, 1)
        score = dev.get("dev_loss")
        if self.info.is_main:
            ckpt.atomic_save({"model": self.model.state_dict()}, ckpt.snapshot_path(self.exp, st.step))
        st.snapshots = [s for s in st.snapshots if s[1] != st.step] + [[score, st.step]]
        # best dev loss first (the latest first without a dev set)
        ranked = sorted(st.snapshots, key=lambda s: (float("inf") if s[0] is None else s[0], -s[1]))
        for dropped in ranked[keep:]:
            if self.info.is_main:
                ckpt.snapshot_path(self.exp, dropped[1]).unlink(missing_ok=True)
        st.snapshots = ranked[:keep]
        barrier(self.info)

    def _end_of_epoch(self) -> bool:
        """Validate, keep snapshots, early stopping; returns False to stop training."""
        st = self.state
        dev = self._validate()
        record = {"epoch": st.epoch + 1, "step": st.step, **dev}
        st.history.append(record)
        if dev:
            log.info(
                "epoch %d: dev loss %.4f, dev CER %s",
                st.epoch + 1,
                dev["dev_loss"],
                f"{100 * dev['dev_cer']:.2f}%" if "dev_cer" in dev else "n/a",
            )
        self._write_metrics("dev", st.step, st.epoch, dev or {"note": "no dev set"})
        self._snapshot(dev)
        go_on = True
        if "dev_loss" in dev:
            if st.best_loss is None or dev["dev_loss"] < st.best_loss - MIN_IMPROVEMENT * abs(st.best_loss):
                st.best_loss, st.bad_epochs = dev["dev_loss"], 0
            else:
                st.bad_epochs += 1
            if self.cfg.patience is not None and st.bad_epochs >= self.cfg.patience:
                self.stop_reason = f"early stopping: no dev loss improvement for {st.bad_epochs} epochs"
                go_on = False
        st.epoch += 1
        st.epoch_batches, st.stream_consumed, st.stream_next = 0, {}, 0
        self._save()
        return go_on and st.epoch < self.cfg.max_epochs

    def _final_model(self) -> UniASR:
        final = copy.deepcopy(self.model).to("cpu")
        chosen = [s[1] for s in self.state.snapshots]
        paths = [ckpt.snapshot_path(self.exp, s) for s in chosen if ckpt.snapshot_path(self.exp, s).exists()]
        if paths:
            final.load_state_dict(ckpt.average_states(paths))
            log.info("final model: average of %d snapshot(s) from steps %s", len(paths), sorted(chosen))
        return final.eval()

    # --- entry point ----------------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        from tqdm import tqdm

        cfg, info = self.cfg, self.info
        handler, logger = None, logging.getLogger("uniasr")
        level = logger.level
        try:
            self.resume_from = self._resume_path()
            if info.is_main:
                self.exp.mkdir(parents=True, exist_ok=True)
                handler = _file_logging(self.exp / "train.log")
                (self.exp / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1, default=str))
            else:
                logger.setLevel(logging.WARNING)  # one copy of the progress messages (rank 0's)
            barrier(info)
            self.data = prepare(cfg, self.exp, info, resuming=self.resume_from is not None)
            self._build(self.data)
            if self.resume_from is not None:
                self._load(self.resume_from)
            self._make_datasets()
            resumed_step = self.state.step if self.resume_from is not None else None
            self.sink = MetricsSink(self.exp, info.is_main, cfg.tensorboard, resumed_step=resumed_step)
            bar = tqdm(disable=None if info.is_main else True, unit="batch", dynamic_ncols=True)
            while self.state.epoch < cfg.max_epochs:
                if not self._train_epoch(bar):
                    self.stop_reason = f"reached max_steps={cfg.max_steps}"
                    self._save()
                    dev = self._validate()
                    self.sink.write("dev", self.state.step, self.state.epoch, dev or {"note": "no dev set"})
                    self._snapshot(dev)
                    break
                if not self._end_of_epoch():
                    break
            bar.close()
            log.info(
                "training finished after %d complete epoch(s), step %d%s",
                self.state.epoch,
                self.state.step,
                f" ({self.stop_reason})" if self.stop_reason else "",
            )
            return self._finish()
        finally:
            if self.sink is not None:
                self.sink.close()
            if handler is not None:
                logger.removeHandler(handler)
                handler.close()
            logger.setLevel(level)
            cleanup(info)

    def _make_datasets(self) -> None:
        cfg, data = self.cfg, self.data
        cmvn = data.cmvn
        self.tokenizer = TokenTable(data.tokens)
        self.maker = FeatureMaker(data.config.frontend, cmvn, cfg.augment, cfg.seed)
        self.train_set = UtteranceDataset(data.train, self.maker, self.tokenizer) if data.train else None
        dev_maker = FeatureMaker(data.config.frontend, cmvn, NO_AUGMENT, cfg.seed)
        self.dev_set = UtteranceDataset(data.dev, dev_maker, self.tokenizer) if data.dev else None
        self.dev_ind = mode_settings(cfg.dev_mode)[0]
        self.dev_decoder = DevDecoder(data.tokens, Frontend(dev_maker.cfg, cmvn), cfg.dev_mode)

    def _finish(self) -> TrainResult:
        model_dir, final = None, None
        if self.info.is_main:
            final = self._final_model()
            model_dir = save_model_dir(
                final,
                self.data.config,
                self.data.tokens,
                self.data.cmvn_path,
                self.exp / "model",
                overwrite=True,
            )
            if (self.exp / DECODING_FILE).is_file():  # kept from --init by prepare()
                shutil.copyfile(self.exp / DECODING_FILE, model_dir / DECODING_FILE)
            log.info("wrote %s", model_dir)
        barrier(self.info)
        return TrainResult(self.exp, model_dir, self.state, final)


def _file_logging(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("uniasr")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # the file gets INFO even when the console shows warnings only
    return handler


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) training as `cfg` says; under torchrun every process calls this."""
    return Trainer(cfg).run()
