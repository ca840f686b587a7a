"""A growing map int64 key -> a row of float32 sums, as tensors: UFNRec's per (user, position, item) placement
counts (and, for its variance-based variant, the sums of the placements' scores).

Lookups are ``searchsorted`` over sorted keys. New keys go to a small sorted side table that is merged into
the main one when it grows past an eighth of it (an LSM tree of two levels), so a batch costs
O(batch log size) and merging O(size) amortised over many batches; never a Python dict.
"""

import torch


class SparseSums:
    def __init__(self, columns=1, device="cpu"):
        self.columns = columns
        self.main_keys = torch.zeros(0, dtype=torch.long, device=device)
        self.main_values = torch.zeros((0, columns), dtype=torch.float32, device=device)
        self.side_keys, self.side_values = self.main_keys.clone(), self.main_values.clone()

    def __len__(self):
        return len(self.main_keys) + len(self.side_keys)

    def _levels(self):
        return ((self.main_keys, self.main_values), (self.side_keys, self.side_values))

    @staticmethod
    def _find(keys, query):
        """(index, found) of each query in the sorted ``keys``."""
        if len(keys) == 0:
            return torch.zeros_like(query), torch.zeros_like(query, dtype=torch.bool)
        index = torch.searchsorted(keys, query).clamp_(max=len(keys) - 1)
        return index, keys[index] == query

    def get(self, query):
        """[*query.shape, columns]: the sums stored for each key, zeros for keys never added to."""
        flat = query.reshape(-1)
        out = torch.zeros((len(flat), self.columns), dtype=torch.float32, device=flat.device)
        for keys, values in self._levels():
            index, found = self._find(keys, flat)
            out[found] = values[index[found]]
        return out.view(query.shape + (self.columns,))

    def add(self, query, values):
        """Add ``values`` [len(query), columns] to the rows of the keys ``query`` [Q] (repeats accumulate)."""
        if len(query) == 0:
            return
        unique, inverse = torch.unique(query, return_inverse=True)
        summed = torch.zeros((len(unique), self.columns), dtype=torch.float32, device=query.device)
        summed.index_add_(0, inverse, values.float())
        new = torch.ones(len(unique), dtype=torch.bool, device=query.device)
        for keys, stored in self._levels():
            index, found = self._find(keys, unique)
            stored.index_add_(0, index[found], summed[found])
            new &= ~found
        if bool(new.any()):
            keys = torch.cat([self.side_keys, unique[new]])
            order = torch.argsort(keys)
            self.side_keys = keys[order]
            self.side_values = torch.cat([self.side_values, summed[new]])[order]
            if len(self.side_keys) > max(1024, len(self.main_keys) // 8):
                self._merge()

    def _merge(self):
        keys = torch.cat([self.main_keys, self.side_keys])
        order = torch.argsort(keys)
        self.main_keys = keys[order]
        self.main_values = torch.cat([self.main_values, self.side_values])[order]
        self.side_keys, self.side_values = self.main_keys[:0], self.main_values[:0]

    def state_dict(self):
        self._merge()
        return {"keys": self.main_keys.clone(), "values": self.main_values.clone()}

    def load_state_dict(self, state):
        device = self.main_keys.device
        self.main_keys, self.main_values = state["keys"].to(device).clone(), state["values"].to(device).clone()
        self.side_keys, self.side_values = self.main_keys[:0], self.main_values[:0]

    def nbytes(self):
        return sum(t.numel() * t.element_size() for t in (self.main_keys, self.main_values, self.side_keys,
                                                          self.side_values))
