"""NegsTrainer: RecBole's Trainer with hooks for samplers, their state in checkpoints and their statistics in
the log and tensorboard. RecBole's optimiser, evaluation, early stopping, progress bars and logging are kept."""

from time import time

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.clip_grad import clip_grad_norm_
from tqdm import tqdm

from recbole.trainer import Trainer
from recbole.utils import ModelType, dict2str, early_stopping, set_color

from recbole_negs import distributed
from recbole_negs.trainers.checkpoint import CheckpointMixin
from recbole_negs.errors import TrainingError


class NegsTrainer(CheckpointMixin, Trainer):
    name = "negs"

    def __init__(self, config, model):
        cpu_processes = not config["single_spec"] and config["device"].type == "cpu"
        if cpu_processes:  # RecBole wraps DDP with device_ids=[rank], which only a CUDA module accepts
            config["single_spec"] = True
        try:
            super().__init__(config, model)
        finally:
            if cpu_processes:
                config["single_spec"] = False
        if cpu_processes:
            self.distributed_model = DistributedDataParallel(self.model)
        self.sampler = getattr(model, "sampler", None)  # None: RecBole's own training (sampler: none)
        # per epoch, beside RecBole's train_loss_dict: what the log shows, kept for plot: True
        self.statistics_history, self.valid_score_history = {}, {}

    @classmethod
    def check_config(cls, config):
        """Config checks of the trainer itself (UFNRecTrainer: a sequential model); none here."""

    def attach_data(self, train_dataset):
        """Called once the training split exists, before any checkpoint is restored (UFNRec's per-target
        state is sized from it); nothing to do here."""

    # --- hooks for subclasses (UFNRecTrainer)
    def on_train_start(self, train_data):
        if self.sampler is not None:
            self.sampler.on_train_start(self.user_scores)
        self.restore_rng(train_data)  # last: the sampler's start-up draws must not shift a resumed run

    def after_optimizer_step(self, loss_value):
        if self.sampler is not None:  # the mean over processes, so that every process adapts alike (GenNi)
            self.sampler.on_batch_end(distributed.mean(loss_value))

    def on_epoch_end(self, epoch_idx):
        """After the epoch's last step, before validation: sampler bookkeeping and its statistics."""
        if self.sampler is None:
            return
        start = time()
        self.sampler.on_epoch_end(epoch_idx, self.user_scores)  # SRNS: new pools and score snapshots, part of the epoch's cost
        self.logger.info(set_color(f"epoch {epoch_idx} sampler epoch end", "green") + f" [time: {time() - start:.2f}s]")
        self.reduce_statistics()
        stats = self.epoch_statistics()
        self.logger.info(set_color(f"epoch {epoch_idx} sampler", "green") + " [" +
                         ", ".join(f"{k}: {_short(v)}" for k, v in stats.items()) + "]")
        for key, value in stats.items():
            self.tensorboard.add_scalar(f"Sampler/{key}", value, epoch_idx)
        self.last_statistics = stats
        self.statistics_history[epoch_idx] = stats

    @torch.no_grad()
    def user_scores(self):
        """Detached scores of every user's items under the current weights, in eval mode (no dropout): what
        SRNS snapshots at each epoch end. The sampler gets this method, never the trainer or the model."""
        model = self.model
        training = model.training
        model.eval()
        try:
            return model.backbone.user_scorer()
        finally:
            model.train(training)

    def epoch_statistics(self):
        return self.sampler.statistics()

    def reduce_statistics(self):
        """Counters summed over the processes before the statistics are computed from them."""
        self.sampler.reduce_statistics()

    def may_stop(self, epoch_idx):
        """Whether early stopping may end training now (UFNRec waits for its warm-up)."""
        return True

    # --- evaluation
    def _full_sort_batch_eval(self, batched_data):
        """RecBole's full ranking; with ``eval_mask_history`` a sequential model's earlier items are masked too
        (RecBole does it for general models only)."""
        interaction, history_index, positive_u, positive_i = batched_data
        if history_index is None and self.config["eval_mask_history"] and \
                self.config["MODEL_TYPE"] == ModelType.SEQUENTIAL:
            history_index = self._sequence_history(interaction)
        return super()._full_sort_batch_eval((interaction, history_index, positive_u, positive_i))

    def _sequence_history(self, interaction):
        """(rows, items) of every item of each row's input sequence except the row's target."""
        sequence = interaction[self.config["ITEM_ID_FIELD"] + self.config["LIST_SUFFIX"]]
        target = interaction[self.config["ITEM_ID_FIELD"]]
        rows, cols = torch.nonzero(sequence, as_tuple=True)
        items = sequence[rows, cols]
        keep = items != target[rows]
        return rows[keep], items[keep]

    # --- checkpoints
    def checkpoint_extras(self):
        return {"sampler": self.sampler.state_dict()} if self.sampler is not None else {}

    def restore_extras(self, extras):
        if self.sampler is not None and "sampler" in extras:
            self.sampler.load_state_dict(extras["sampler"])

    # --- training
    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self.model.train()
        loss_func = loss_func or self.model.calculate_loss
        if self.sampler is not None:
            self.sampler.on_epoch_start(epoch_idx)
            self.sampler.reset_statistics()
        batches = tqdm(train_data, total=len(train_data), ncols=100,
                       desc=set_color(f"Train {epoch_idx:>5}", "pink")) if show_progress else train_data
        if not self.config["single_spec"] and train_data.shuffle:
            train_data.sampler.set_epoch(epoch_idx)
        scaler = torch.amp.GradScaler("cuda", enabled=self.enable_scaler)
        total_loss = None
        for batch_idx, interaction in enumerate(batches):
            interaction = interaction.to(self.device)
            self.optimizer.zero_grad()
            sync_loss = 0
            if not self.config["single_spec"]:
                self.set_reduce_hook()
                sync_loss = self.sync_grad_loss()
            with torch.autocast(device_type=self.device.type, enabled=self.enable_amp):
                losses = loss_func(interaction)
            if isinstance(losses, tuple):
                loss = sum(losses)
                parts = tuple(part.item() for part in losses)
                total_loss = parts if total_loss is None else tuple(map(sum, zip(total_loss, parts)))
            else:
                loss = losses
                total_loss = loss.item() if total_loss is None else total_loss + loss.item()
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"training loss is {loss.item()} at epoch {epoch_idx}, batch {batch_idx}; the last good "
                    f"checkpoint is kept at {self.saved_model_file} (lower learning_rate, or check the data)")
            scaler.scale(loss + sync_loss).backward()
            if self.clip_grad_norm:
                clip_grad_norm_(self.model.parameters(), **self.clip_grad_norm)
            scaler.step(self.optimizer)
            scaler.update()
            self.after_optimizer_step(loss.item())
        return total_loss

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False, callback_fn=None):
        if saved and self.start_epoch >= self.epochs:
            self._save_checkpoint(-1, verbose=verbose)
        self.eval_collector.data_collect(train_data)
        if self.config["train_neg_sample_args"].get("dynamic", False):
            train_data.get_model(self.model)  # RecBole's own DNS (sampler: none)
        self.on_train_start(train_data)

        for epoch_idx in range(self.start_epoch, self.epochs):
            start = time()
            train_loss = self._train_epoch(train_data, epoch_idx, show_progress=show_progress)
            # the mean over processes: decisions taken from the loss curve (UFNRec's warm-up) agree everywhere
            self.train_loss_dict[epoch_idx] = distributed.mean(
                sum(train_loss) if isinstance(train_loss, tuple) else train_loss)
            if verbose:
                self.logger.info(self._generate_train_loss_output(epoch_idx, start, time(), train_loss))
            self._add_train_loss_to_tensorboard(epoch_idx, train_loss)
            self.on_epoch_end(epoch_idx)
            stop = self._validate(epoch_idx, valid_data, verbose, saved, show_progress, callback_fn)
            if saved:
                self.save_last(epoch_idx, train_data)
            if stop:
                break

        self._add_hparam_to_tensorboard(self.best_valid_score)
        return self.best_valid_score, self.best_valid_result

    def _validate(self, epoch_idx, valid_data, verbose, saved, show_progress, callback_fn):
        """RecBole's validation, best-model checkpoint and early stopping; True when training should stop."""
        if self.eval_step <= 0 or not valid_data:
            if saved:
                self._save_checkpoint(epoch_idx, verbose=verbose)
            return False
        if (epoch_idx + 1) % self.eval_step != 0:
            return False
        start = time()
        valid_score, valid_result = self._valid_epoch(valid_data, show_progress=show_progress)
        self.best_valid_score, self.cur_step, stop_flag, update_flag = early_stopping(
            valid_score, self.best_valid_score, self.cur_step, max_step=self.stopping_step,
            bigger=self.valid_metric_bigger)
        if verbose:
            self.logger.info((set_color("epoch %d evaluating", "green") + " [" + set_color("time", "blue") +
                              ": %.2fs, " + set_color("valid_score", "blue") + ": %f]")
                             % (epoch_idx, time() - start, valid_score))
            self.logger.info(set_color("valid result", "blue") + ": \n" + dict2str(valid_result))
        self.tensorboard.add_scalar("Vaild_score", valid_score, epoch_idx)
        self.valid_score_history[epoch_idx] = valid_score
        if update_flag:
            self.best_valid_result = valid_result
            if saved:
                self._save_checkpoint(epoch_idx, verbose=verbose)
        if callback_fn:
            callback_fn(epoch_idx, valid_score)
        if stop_flag and self.may_stop(epoch_idx):
            if verbose:
                self.logger.info("Finished training, best eval result in epoch %d"
                                 % (epoch_idx - self.cur_step * self.eval_step))
            return True
        return False


def _short(value):
    return str(int(value)) if float(value).is_integer() else f"{value:.4f}"
