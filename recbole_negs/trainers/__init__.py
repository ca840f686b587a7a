"""Trainers (registered by name in ``recbole_negs.registry.TRAINERS``): NegsTrainer (sampler hooks and state);
UFNRecTrainer builds on it. Checkpoints, RNG state and evaluation-user subsets stand beside them."""

from recbole.trainer import Trainer
from recbole.utils import get_trainer

from recbole_negs import registry
from recbole_negs.trainers.checkpoint import CheckpointMixin
from recbole_negs.trainers.negs import NegsTrainer
from recbole_negs.trainers.ufnrec.trainer import UFNRecTrainer


def trainer_class(config):
    """The trainer for a run: the registered one for plugin samplers; for sampler: none RecBole's own trainer
    for the model, with the plugin's checkpoint handling (torch >= 2.6 loads, unique names, atomic writes)."""
    if config["sampler"] != registry.NO_SAMPLER:
        return registry.load("trainer", config["trainer"])
    recbole_trainer = get_trainer(config["MODEL_TYPE"], config["model"])
    if recbole_trainer is Trainer:
        return NegsTrainer
    return type(f"Negs{recbole_trainer.__name__}", (CheckpointMixin, recbole_trainer), {})


__all__ = ["NegsTrainer", "UFNRecTrainer", "trainer_class"]
