"""Names for UFNRec's training targets: (user, position in the user's training sequence) -> one integer key,
the same target in every epoch, so that mining can keep per-target state in flat tensors."""

import numpy as np
import torch

from recbole_negs.sequence_rows import training_sequences


class TargetIndex:
    def __init__(self, offsets, count):
        self.offsets = offsets  # [n_users] where each user's training sequence starts in one flat array
        self.count = count  # training targets in all

    @classmethod
    def from_dataset(cls, train_dataset, device):
        users, indptr, _ = training_sequences(train_dataset)
        offsets = np.zeros(train_dataset.user_num, dtype=np.int64)
        offsets[users] = indptr[:-1]
        return cls(torch.from_numpy(offsets).to(device), int(indptr[-1]))

    def keys(self, users, positions):
        """[N] keys of the targets at ``positions`` of the ``users``' training sequences."""
        return self.offsets[users] + positions
