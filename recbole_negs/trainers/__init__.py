"""Trainers: NegsTrainer (sampler hooks and state); UFNRecTrainer builds on it."""

from recbole_negs.trainers.negs import NegsTrainer

TRAINER_CLASSES = {"negs": NegsTrainer}

__all__ = ["NegsTrainer", "TRAINER_CLASSES"]
