"""Sampled evaluation (RecBole's ``uni100`` and the like) with the negatives of the UFNRec authors' protocol:
drawn uniformly with replacement from the items outside the user's *training* items and other than the
target, redrawn at every evaluation; or, with ``eval_neg_seed``, the SRNS code's: one fixed set per user. RecBole's own sampler excludes only the target for sequential models, and
everything the user has interacted with up to the split for general ones (so at test the validation item can
never be a negative, while in UFNRec's code it can)."""

import torch

from recbole.data.dataloader.general_dataloader import NegSampleEvalDataLoader

from recbole_negs.history import UserHistory


class TrainingItemsEvalSampler:
    """Stands in for RecBole's evaluation sampler (same ``phase`` and ``sample_by_user_ids`` interface)."""

    def __init__(self, history: UserHistory, phase, fixed=None):
        self.history = history
        self.phase = phase
        self.fixed = fixed  # FixedEvalNegatives, or None: redrawn at every evaluation

    def sample_by_user_ids(self, user_ids, item_ids, num):
        """RecBole's layout: ``num`` blocks of ``len(user_ids)`` ids (the k-th negative of every row, then the
        (k+1)-th)."""
        users = torch.as_tensor(user_ids, dtype=torch.long)
        if self.fixed is not None:
            return self.fixed.of(users, num).t().reshape(-1)
        targets = torch.as_tensor(item_ids, dtype=torch.long)[:, None]
        ids = self.history.sample_free(users, num)
        clash = ids == targets
        while bool(clash.any()):  # the target itself (a held-out item is outside the training items)
            rows = torch.nonzero(clash.any(dim=1))[:, 0]
            redrawn = self.history.sample_free(users[rows], num)
            ids[rows] = torch.where(clash[rows], redrawn, ids[rows])
            clash = ids == targets
        return ids.t().reshape(-1)


class FixedEvalNegatives:
    """One set of negatives per user, drawn once with a seed from the items the user never interacted with
    (in any split) and used for validation and test alike: the SRNS code's protocol (100 per user, with
    replacement)."""

    def __init__(self, history: UserHistory, seed):
        self.history, self.seed, self.sets = history, seed, {}

    def of(self, users, num):
        if num not in self.sets:
            generator = torch.Generator().manual_seed(self.seed)
            everyone = torch.arange(self.history.n_users)
            self.sets[num] = self.history.sample_free(everyone, num, generator=generator)
        return self.sets[num][users]


def _history(*datasets):
    matrices = [dataset.inter_matrix(form="coo") for dataset in datasets]
    total = matrices[0]
    for matrix in matrices[1:]:
        total = total + matrix
    return UserHistory.from_matrix(total)


def use_training_items_negatives(config, train_dataset, *eval_loaders):
    """With ``eval_neg_exclude: train``, give every sampled-evaluation loader the training-items sampler (and,
    with ``eval_neg_seed``, one fixed set of negatives per user for all evaluations)."""
    if config["eval_neg_exclude"] != "train":
        return
    loaders = [loader for loader in eval_loaders
               if isinstance(loader, NegSampleEvalDataLoader) and loader._sampler is not None]
    history = _history(train_dataset)
    fixed = None
    if config["eval_neg_seed"] is not None:
        fixed = FixedEvalNegatives(_history(train_dataset, *(loader._dataset for loader in loaders)),
                                   config["eval_neg_seed"])
    for loader in loaders:
        loader._sampler = TrainingItemsEvalSampler(history, loader._sampler.phase, fixed)
