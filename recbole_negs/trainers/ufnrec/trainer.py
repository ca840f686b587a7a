"""UFNRecTrainer (Liu et al. 2022, "UFNRec: Utilizing False Negative Samples for Sequential Recommendation"):
after a warm-up, negatives that keep beating the positive are mined as false negatives, trained as positives,
and pulled towards a mean teacher's predictions. Everything else is NegsTrainer: the training step is the
plugin's one encoder pass, the uniform sampler draws the non-recorded negatives, RecBole evaluates.

The loss follows the authors' code (docs/ufnrec.md): ``2 * mean BCE`` over every positive and negative entry
(reversed negatives labelled 1) ``+ lambda * mean BCE(student logit, sigmoid(teacher logit))`` over the
reversed entries.
"""

import torch
import torch.nn.functional as F
from recbole.utils import ModelType, set_color

from recbole_negs import distributed
from recbole_negs.backbones import build_backbone
from recbole_negs.errors import ConfigError
from recbole_negs.losses import entry_bce
from recbole_negs.trainers.ufnrec.teacher import MeanTeacher
from recbole_negs.trainers.negs import NegsTrainer
from recbole_negs.trainers.ufnrec.mining import FalseNegativeMiner
from recbole_negs.trainers.ufnrec.targets import TargetIndex

FLATTEN_RATIO = 200  # the code's rule: last drop < (drop from epoch 1 to 6) / 200
FLATTEN_MIN_EPOCHS = 8


class UFNRecTrainer(NegsTrainer):
    name = "ufnrec"

    @classmethod
    def check_config(cls, config):
        if config["MODEL_TYPE"] != ModelType.SEQUENTIAL:
            raise ConfigError(f"config key 'trainer' = 'ufnrec' needs a sequential model (its state is per user "
                              f"and position); model '{config['model']}' is not one")
        if config["seq_train_mode"] != "all_positions":
            raise ConfigError("config key 'seq_train_mode' = 'prefix' is not available with trainer 'ufnrec', "
                              "which keeps state per (user, position); allowed: all_positions")
        if config["sampler"] != "uniform":
            raise ConfigError(f"config key 'sampler' = '{config['sampler']}' is not available with trainer "
                              "'ufnrec' (recorded negatives first, uniform draws in the other slots); allowed: uniform")

    def __init__(self, config, model):
        super().__init__(config, model)
        self.miner = None  # per-target state, built by attach_data from the training split
        self.targets = None
        self.lam = config["ufn_lambda"]
        self.warmup = config["ufn_warmup_epochs"]
        self.teacher = None
        self.teacher_backbone = None
        self.mining_since = None  # first epoch trained with mining
        self._reset_epoch_terms()

    def attach_data(self, train_dataset):
        """Mining keeps state per training target: name every target of the training split by one key."""
        self.targets = TargetIndex.from_dataset(train_dataset, self.device)
        self.miner = FalseNegativeMiner(self.config, self.sampler.context.n_items, self.targets.count, self.device)

    def _build_optimizer(self, **kwargs):
        """Adam with the code's betas (RecBole has no key for them); other learners as RecBole builds them."""
        if kwargs.get("learner", self.learner).lower() != "adam":
            return super()._build_optimizer(**kwargs)
        return torch.optim.Adam(kwargs.get("params", self.model.parameters()), lr=self.learning_rate,
                                betas=tuple(self.config["ufn_adam_betas"]), weight_decay=self.weight_decay)

    # --- warm-up
    @property
    def mining(self):
        return self.mining_since is not None

    def start_mining(self, epoch, reason):
        self.mining_since = epoch
        self.teacher = MeanTeacher(self.model.model, self.config["ufn_ema_decay"])
        self.teacher_backbone = build_backbone(self.teacher.model, self.config)
        self.logger.info(set_color("UFNRec", "green") + f": mining and the mean teacher start at epoch {epoch} "
                         f"({reason})")

    def warmup_over(self, epoch):
        """After ``epoch`` has finished: a fixed number of epochs, or the code's loss-flattening rule."""
        if self.warmup != "auto":
            return epoch + 1 >= self.warmup, f"ufn_warmup_epochs = {self.warmup}"
        losses = [self.train_loss_dict[e] for e in sorted(self.train_loss_dict)]
        if len(losses) < FLATTEN_MIN_EPOCHS:
            return False, ""
        last_drop, early_drop = losses[-2] - losses[-1], losses[1] - losses[6]
        return last_drop < early_drop / FLATTEN_RATIO, (
            f"loss curve flat: last drop {last_drop:.4f} < drop from epoch 1 to 6 {early_drop:.4f} / {FLATTEN_RATIO}")

    def on_train_start(self, train_data):
        super().on_train_start(train_data)
        if not self.mining and self.warmup == 0:
            self.start_mining(self.start_epoch, "ufn_warmup_epochs = 0")

    def on_epoch_end(self, epoch_idx):
        self.miner.sync()
        super().on_epoch_end(epoch_idx)
        if not self.mining:
            over, reason = self.warmup_over(epoch_idx)
            if over:
                self.start_mining(epoch_idx + 1, reason)

    def may_stop(self, epoch_idx):
        """Early stopping waits for the warm-up and then a full ``stopping_step`` of evaluations."""
        return self.mining and epoch_idx + 1 - self.mining_since >= self.stopping_step * self.eval_step

    # --- the training step
    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        self._reset_epoch_terms()
        self.miner.reset_statistics()
        return super()._train_epoch(train_data, epoch_idx, loss_func=self.calculate_loss,
                                    show_progress=show_progress)

    def calculate_loss(self, interaction):
        """(2 * mean BCE, lambda * consistency) for one batch; RecBole logs the two parts."""
        net = self.model
        if not self.mining:
            s = net.step(interaction)
            return 2 * entry_bce(s.pos, s.neg, torch.zeros_like(s.neg), torch.ones_like(s.neg))
        s = net.step(interaction, place=self.place)
        placement = s.negatives
        basic = 2 * entry_bce(s.pos, s.neg, placement.label, placement.weight)
        consistency = self.consistency(interaction, placement, s.neg)
        self.miner.update(placement.keys, placement, s.pos.detach(), s.neg.detach())
        return basic, self.lam * consistency

    def place(self, enc, uniform):
        """The target's recorded negatives in the first slots, uniform draws in the rest (``NegsModel.step``)."""
        keys = self.targets.keys(enc.users, enc.positions)
        placement = self.miner.place(keys, uniform.ids)
        placement.keys = keys
        return placement

    def consistency(self, interaction, placement, student_neg):
        """Eq. 3.4-3.6: BCE between the student's logit and the teacher's probability on the mined entries;
        the teacher runs only for batches that have some."""
        entries = placement.consistency
        if not bool(entries.any()):
            return student_neg.new_zeros(())
        with torch.no_grad():
            self.teacher.model.train(self.config["ufn_teacher_dropout"])
            teacher_enc = self.teacher_backbone.encode(interaction)
            rows, cols = torch.nonzero(entries, as_tuple=True)
            teacher_enc.queries = teacher_enc.queries[rows]  # one (target, item) pair per mined entry
            teacher = self.teacher_backbone.score(teacher_enc, placement.ids[rows, cols][:, None])[:, 0]
        student = student_neg[entries]
        loss = F.binary_cross_entropy_with_logits(student, torch.sigmoid(teacher))
        terms = self._epoch_terms
        terms["consistency_sum"] += loss.item() * len(student)
        terms["entries"] += len(student)
        terms["agree"] += int(((student > 0) == (teacher > 0)).sum())
        return loss

    def after_optimizer_step(self, loss_value):
        super().after_optimizer_step(loss_value)
        if self.mining:
            self.teacher.update(self.model.model)

    # --- statistics
    def _reset_epoch_terms(self):
        self._epoch_terms = {"consistency_sum": 0.0, "entries": 0, "agree": 0}

    def reduce_statistics(self):
        super().reduce_statistics()
        self.miner._stats = distributed.sum_dict(self.miner._stats)
        self._epoch_terms = distributed.sum_dict(self._epoch_terms)

    def epoch_statistics(self):
        terms = self._epoch_terms
        entries = max(terms["entries"], 1)
        return {**super().epoch_statistics(), **self.miner.statistics(), "mining": float(self.mining),
                "consistency": terms["consistency_sum"] / entries, "teacher_agreement": terms["agree"] / entries}

    # --- evaluation: the teacher once mining has started
    def _evaluated(self):
        return self.teacher.model if self.mining and self.config["ufn_evaluate"] == "teacher" else None

    def evaluating(self):
        return _evaluating(self.model, self._evaluated())

    def _valid_epoch(self, valid_data, show_progress=False):
        with self.evaluating():
            return super()._valid_epoch(valid_data, show_progress=show_progress)

    def load_best(self, model_file=None):
        """The whole state of the best epoch: the evaluated weights, then student, teacher and mining flag."""
        checkpoint = super().load_best(model_file)
        self.restore_extras(checkpoint.get("negs", {}))
        return checkpoint

    # --- checkpoints: "state_dict" is the evaluated model (what load_data_and_model serves)
    def evaluated_state_dict(self):
        evaluated = self._evaluated()
        return self.model.state_dict() if evaluated is None else evaluated.state_dict()

    def checkpoint_extras(self):
        extras = {**super().checkpoint_extras(), "miner": self.miner.state_dict(), "mining_since": self.mining_since,
                  "student": self.model.state_dict()}
        if self.teacher is not None:
            extras["teacher"] = self.teacher.state_dict()
        return extras

    def restore_extras(self, extras):
        super().restore_extras(extras)
        if "miner" not in extras:
            return
        self.miner.load_state_dict(extras["miner"])
        self.model.load_state_dict(extras["student"])
        self.mining_since = extras["mining_since"]
        if "teacher" in extras:
            self.teacher = MeanTeacher(self.model.model, self.config["ufn_ema_decay"])
            self.teacher.load_state_dict(extras["teacher"])
            self.teacher_backbone = build_backbone(self.teacher.model, self.config)


class _evaluating:
    """Put ``evaluated`` in the wrapper's place for RecBole's evaluation, then restore the student."""

    def __init__(self, wrapper, evaluated):
        self.wrapper, self.evaluated, self.student = wrapper, evaluated, wrapper.model

    def __enter__(self):
        if self.evaluated is not None:
            self.wrapper.model = self.evaluated

    def __exit__(self, *exc):
        self.wrapper.model = self.student
