"""Trainers: NegsTrainer (sampler hooks and state); UFNRecTrainer builds on it."""

from recbole_negs.trainers.negs import NegsTrainer
from recbole_negs.trainers.ufnrec.trainer import UFNRecTrainer

TRAINER_CLASSES = {"negs": NegsTrainer, "ufnrec": UFNRecTrainer}

__all__ = ["NegsTrainer", "UFNRecTrainer", "TRAINER_CLASSES"]
