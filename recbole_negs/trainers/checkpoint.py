"""Checkpoint files: unique per run, written atomically, and loadable on torch >= 2.6.

RecBole's checkpoint holds its Config object, which torch >= 2.6 refuses to unpickle by default
(``weights_only=True``). The plugin unpickles only files it wrote in this run or that the user named
explicitly (``--checkpoint_file``, ``load_data_and_model(path)``, ``evaluate(model_file=...)``); never load a
checkpoint you do not trust.
"""

import contextlib
import os
import shutil
import uuid

import torch

from recbole.utils import get_local_time

from recbole_negs import distributed
from recbole_negs.checkpoint_files import (_config_value, _shown, check_checkpoint_dir, check_fits,  # noqa: F401
                                           load_checkpoint, read_user_checkpoint)
from recbole_negs.errors import ConfigError
from recbole_negs.trainers import rng_state
from recbole_negs.trainers.eval_users import capped_loader


def unique_checkpoint_path(config):
    """``<checkpoint_dir>/<model>-<time>-<random>.pth``: two runs started in the same second (RecBole's
    name has one-second resolution) never share, and so never overwrite, a file."""
    check_checkpoint_dir(config["checkpoint_dir"], create=True)
    while True:
        name = f"{config['model']}-{get_local_time()}-{uuid.uuid4().hex[:6]}.pth"
        path = os.path.join(config["checkpoint_dir"], name)
        if not os.path.exists(path):
            return path


def save_atomically(state, path):
    """Write to a temporary file beside ``path`` and rename it: a crash mid-write leaves the old file intact."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        torch.save(state, tmp, pickle_protocol=4)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class CheckpointMixin:
    """For any RecBole Trainer: unique file names, atomic writes, loads that work on torch >= 2.6, a ``negs``
    entry for the plugin's own state (``checkpoint_extras`` / ``restore_extras``), and besides the best model a
    "last" checkpoint written after every epoch with everything needed to continue exactly (``save_last``)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        # one name for all processes: only rank 0 writes, every rank reads the best model back
        self.saved_model_file = distributed.same_as_rank0(unique_checkpoint_path(config))
        self.last_model_file = self.saved_model_file[: -len(".pth")] + "-last.pth"
        self._pending_rng = None
        self.eval_rounds = 0  # evaluations so far: names the users an eval_max_users evaluation draws

    def checkpoint_extras(self):
        return {}

    def evaluated_state_dict(self):
        """The weights stored as the checkpoint's model: those that were evaluated (UFNRec: its teacher)."""
        return self.model.state_dict()

    def restore_extras(self, extras):
        pass

    def _writes_files(self):
        return self.config["single_spec"] or self.config["local_rank"] == 0

    def _state(self, epoch):
        scheduler = getattr(self, "scheduler", None)
        return {
            "config": self.config,
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "best_valid_result": getattr(self, "best_valid_result", None),
            "train_loss_dict": dict(self.train_loss_dict),
            "state_dict": self.evaluated_state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "negs": self.checkpoint_extras(),
            "eval_rounds": self.eval_rounds,
        }

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self._writes_files():
            return
        path = kwargs.pop("saved_model_file", self.saved_model_file)
        save_atomically(self._state(epoch), path)
        if verbose:
            self.logger.info(f"Saving current: {path}")

    def save_last(self, epoch, train_data):
        """The end-of-epoch checkpoint: the best model's state plus the RNG states and the best file's name."""
        if not self._writes_files():
            return
        state = self._state(epoch)
        state["rng"] = rng_state.capture(getattr(train_data, "generator", None))
        state["best_file"] = self.saved_model_file
        save_atomically(state, self.last_model_file)

    def resume_checkpoint(self, resume_file):
        """Continue from a checkpoint (a "last" one continues exactly). This run keeps writing its own files:
        the checkpoint's best model is copied to this run's best file, nothing of the old run is touched."""
        checkpoint = read_user_checkpoint(resume_file, self.device)
        saved_model = _config_value(checkpoint["config"], "model")
        if saved_model is not None and str(saved_model).lower() != self.config["model"].lower():
            raise ConfigError(f"{_shown(resume_file)} was written for model '{saved_model}', and this run trains "
                              f"'{self.config['model']}'; resume with --model={saved_model}, or drop "
                              "checkpoint_file to start afresh")
        check_fits(resume_file, checkpoint, self.model, self.config)
        self.start_epoch = checkpoint["epoch"] + 1
        self.cur_step = checkpoint["cur_step"]
        self.best_valid_score = checkpoint["best_valid_score"]
        self.best_valid_result = checkpoint.get("best_valid_result")
        self.train_loss_dict.update(checkpoint.get("train_loss_dict", {}))
        self.eval_rounds = checkpoint.get("eval_rounds", 0)
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, KeyError) as error:
            raise ConfigError(f"{_shown(resume_file)} holds an optimizer state this run's optimizer cannot take "
                              f"({error}); resume with the learner it was trained with "
                              f"('{_config_value(checkpoint['config'], 'learner')}')") from None
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None and checkpoint.get("scheduler") is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        self.restore_extras(checkpoint.get("negs", {}))
        best = checkpoint.get("best_file", resume_file)
        if self._writes_files() and os.path.isfile(best):
            shutil.copyfile(best, self.saved_model_file)
        self._pending_rng = checkpoint.get("rng")
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def restore_rng(self, train_data):
        """Called when training starts: the RNG states of a resumed "last" checkpoint, loader included."""
        if self._pending_rng is not None:
            rng_state.restore(self._pending_rng, getattr(train_data, "generator", None))
            self._pending_rng = None

    def load_best(self, model_file=None):
        distributed.barrier()  # rank 0 has finished writing
        path = model_file or self.saved_model_file
        checkpoint = load_checkpoint(path, self.device)
        self.model.load_state_dict(checkpoint["state_dict"])
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.logger.info(f"Loading model structure and parameters from {path}")
        return checkpoint

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if not eval_data:
            return None
        if load_best_model:
            self.load_best(model_file)
        with self.evaluating():
            return super().evaluate(self.evaluated_users(eval_data), load_best_model=False,
                                    show_progress=show_progress)

    def evaluating(self):
        """A context in which the evaluated model stands in the wrapper (UFNRec: its teacher); here the model
        itself."""
        return contextlib.nullcontext()

    def evaluated_users(self, eval_data):
        """The loader of this evaluation: all users, or with ``eval_max_users`` a fresh random subset."""
        self.eval_rounds += 1
        single = self.config["single_spec"]
        seed = self.config["seed"] * 1_000_003 + self.eval_rounds
        return capped_loader(eval_data, self.config["eval_max_users"], seed,
                             0 if single else self.config["local_rank"], 1 if single else self.config["world_size"])
