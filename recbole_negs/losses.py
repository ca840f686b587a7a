"""Losses over a positive score ``pos`` [N] and the scores of its K sampled negatives ``neg`` [N, K].

Every loss is a mean over the N positives, so its scale does not depend on how many positions a batch has.
"""

import math

import torch
import torch.nn.functional as F


def bpr(pos, neg):
    """BPR (Rendle et al. 2009): -ln sigmoid(pos - neg), averaged over all (positive, negative) pairs."""
    return -F.logsigmoid(pos[:, None] - neg).mean()


def soft_bpr(pos, neg, beta):
    """PDNS's soft BPR (Shi et al., "Enhancing Recommender Systems: A Strategy to Mitigate False Negative
    Impact", arXiv 2211.13912, Eq. 10): -ln sigmoid(beta * (pos - neg)). Its gradient is beta * sigmoid(-beta *
    gap) per pair, so a small beta damps the push on hard (possibly false) negatives."""
    return -F.logsigmoid(beta * (pos[:, None] - neg)).mean()


def squared_l2(weight, *embeddings):
    """The papers' L2 on a batch's embeddings: ``weight * sum ||e||^2 / (2 B)``, B = the batch's positives (the
    first dim of the last tensor), so a row in the batch once gets the gradient ``weight * e / B`` added to the
    mean loss's. It is RecBole's ``EmbLoss(require_pow=True)``; the SRNS code's TF ``l2_regularizer(lambda)`` =
    ``lambda / 2 * sum e^2`` beside a loss *summed* over the batch is the same objective times B (Adam is
    invariant to that factor); PDNS's lambda (Table 6, no formula given) is read as the same LightGCN / MixGCF
    form. docs/decisions.md, "The papers' L2"."""
    if not weight:
        return 0.0
    total = sum(embedding.square().sum() for embedding in embeddings)
    return weight * total / (2 * embeddings[-1].shape[0])


def bce(pos, neg, pos_weight=1.0):
    """Binary cross-entropy with K negatives (the NCE form of SASRec / GenNi / UFNRec):
    -w ln sigmoid(pos) - sum_k ln(1 - sigmoid(neg_k)), averaged over positives."""
    return (-pos_weight * F.logsigmoid(pos) - F.logsigmoid(-neg).sum(dim=1)).mean()


def gbce_beta(num_negatives, num_items, t):
    """gBCE's exponent (Petrov & Macdonald, RecSys 2023, Eq. 11): beta = alpha (t (1 - 1/alpha) + 1/alpha)
    with the sampling rate alpha = K / (|I| - 1); t = 0 gives beta = 1 (BCE), t = 1 gives beta = alpha."""
    alpha = num_negatives / (num_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def gbce(pos, neg, num_items, t):
    """gBCE: BCE whose positive term is sigmoid(pos)^beta, undoing the overconfidence of few negatives."""
    return bce(pos, neg, pos_weight=gbce_beta(neg.shape[1], num_items, t))


def sampled_softmax(pos, neg, log_q=None):
    """Cross-entropy over [positive, K negatives] (Jean et al. 2015). With the proposal log-probabilities
    ``log_q`` of the negatives, each negative logit becomes neg - log(K q): then the sum over negatives is an
    unbiased estimate of the partition function over the catalog, and with all other items as negatives
    under a uniform q it is exactly the full softmax."""
    if log_q is not None:
        neg = neg - (log_q + math.log(neg.shape[1]))
    logits = torch.cat([pos[:, None], neg], dim=1)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def entry_bce(pos, neg, labels, weights):
    """BCE with logits averaged over every entry that stays in the loss: the positive (label 1) and its K
    negatives (label 0, or 1 where reversed), as the authors' code averages over non-padding entries."""
    logits = torch.cat([pos[:, None], neg], dim=1)
    targets = torch.cat([torch.ones_like(pos)[:, None], labels], dim=1)
    weight = torch.cat([torch.ones_like(pos)[:, None], weights], dim=1)
    terms = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (terms * weight).sum() / weight.sum()


class Loss:
    """The configured loss as one callable ``loss(pos, neg, log_q=None)``."""

    def __init__(self, config, num_items):
        self.name = config["loss"]
        self.num_items = num_items  # real items, padding excluded
        self.beta = config["soft_bpr_beta"]
        self.t = config["gbce_t"]
        self.use_log_q = bool(config["sampled_softmax_logq"])

    def __call__(self, pos, neg, log_q=None):
        if self.name == "bpr":
            return bpr(pos, neg)
        if self.name == "soft_bpr":
            return soft_bpr(pos, neg, self.beta)
        if self.name == "bce":
            return bce(pos, neg)
        if self.name == "gbce":
            return gbce(pos, neg, self.num_items, self.t)
        return sampled_softmax(pos, neg, log_q if self.use_log_q else None)
