"""In-batch negatives (Yi et al., RecSys 2019, "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations"): the batch's own positives serve every target as negatives, one shared set, scored by one
matmul. An item enters the set as often as it is a target, i.e. by its popularity, so the sampled softmax
subtracts log q with q the item's share of the training targets (the logQ correction of section 3; the counts
are exact here, where the paper estimates them from a stream). A positive that is a target's own, or (with
``neg_exclude: history``) one of the user's training items, is an accidental hit, masked out of its loss.

K = ``neg_sample_num`` caps the set: with more targets than K, the positives of K targets drawn uniformly
without replacement from the batch (the same proposal, fewer columns); with fewer, every positive."""

import torch

from recbole_negs.samplers.base import Negatives, NegativeSampler


class InBatchSampler(NegativeSampler):
    name = "in_batch"
    shares = ("batch",)

    def __init__(self, config, context):
        super().__init__(config, context)
        counts = context.item_counts.double()
        self.log_popularity = (torch.log(counts) - torch.log(counts.sum())).float()  # -inf for unseen items

    def check_data(self):
        """The set is the batch's positives: no user can run out of items to draw."""

    def in_batch_items(self, targets):
        positives = targets.positives
        if len(positives) > self.num:
            positives = positives[torch.randperm(len(positives), device=positives.device)[: self.num]]
        return positives

    def sample(self, targets):
        shared = self.in_batch_items(targets)
        return Negatives(shared=shared, log_q=self.log_popularity[shared][None, :],
                         valid=self.shared_valid(targets, shared, None))
