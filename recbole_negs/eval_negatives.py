"""Sampled evaluation (RecBole's ``uni100`` and the like) with the negatives of the UFNRec authors' protocol:
drawn uniformly with replacement from the items outside the user's *training* items and other than the
target, redrawn at every evaluation. RecBole's own sampler excludes only the target for sequential models, and
everything the user has interacted with up to the split for general ones (so at test the validation item can
never be a negative, while in UFNRec's code it can)."""

import torch

from recbole.data.dataloader.general_dataloader import NegSampleEvalDataLoader

from recbole_negs.history import UserHistory


class TrainingItemsEvalSampler:
    """Stands in for RecBole's evaluation sampler (same ``phase`` and ``sample_by_user_ids`` interface)."""

    def __init__(self, history: UserHistory, phase):
        self.history = history
        self.phase = phase

    def sample_by_user_ids(self, user_ids, item_ids, num):
        """RecBole's layout: ``num`` blocks of ``len(user_ids)`` ids (the k-th negative of every row, then the
        (k+1)-th)."""
        users = torch.as_tensor(user_ids, dtype=torch.long)
        targets = torch.as_tensor(item_ids, dtype=torch.long)[:, None]
        ids = self.history.sample_free(users, num)
        clash = ids == targets
        while bool(clash.any()):  # the target itself (a held-out item is outside the training items)
            rows = torch.nonzero(clash.any(dim=1))[:, 0]
            redrawn = self.history.sample_free(users[rows], num)
            ids[rows] = torch.where(clash[rows], redrawn, ids[rows])
            clash = ids == targets
        return ids.t().reshape(-1)


def use_training_items_negatives(config, train_dataset, *eval_loaders):
    """With ``eval_neg_exclude: train``, give every sampled-evaluation loader the training-items sampler."""
    if config["eval_neg_exclude"] != "train":
        return
    history = UserHistory.from_matrix(train_dataset.inter_matrix(form="coo"))
    for loader in eval_loaders:
        if isinstance(loader, NegSampleEvalDataLoader) and loader._sampler is not None:
            loader._sampler = TrainingItemsEvalSampler(history, loader._sampler.phase)
