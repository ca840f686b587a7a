"""Losses over a positive score ``pos`` [N] and the scores of its K sampled negatives ``neg`` [N, K].

Every loss is a mean over the N positives, so its scale does not depend on how many positions a batch has.
"""

import math

import torch
import torch.nn.functional as F

from recbole_negs.errors import ConfigError


def masked(neg, valid):
    """Negative scores with the entries that are not negatives for their target (``valid`` False: a shared
    candidate that is the target's positive or excluded for it) at -inf, where they add nothing to a BCE
    or softmax and get no gradient. ``valid`` None: every entry counts."""
    return neg if valid is None else neg.masked_fill(~valid, float("-inf"))


def pair_mean(terms, valid):
    """Mean over the valid (positive, negative) pairs."""
    if valid is None:
        return terms.mean()
    return terms.masked_fill(~valid, 0.0).sum() / valid.sum().clamp_min(1)


def bpr(pos, neg, valid=None):
    """BPR (Rendle et al. 2009): -ln sigmoid(pos - neg), averaged over all (positive, negative) pairs."""
    return pair_mean(-F.logsigmoid(pos[:, None] - neg), valid)


def soft_bpr(pos, neg, beta, valid=None):
    """PDNS's soft BPR (Shi et al., "Enhancing Recommender Systems: A Strategy to Mitigate False Negative
    Impact", arXiv 2211.13912, Eq. 10): -ln sigmoid(beta * (pos - neg)). Its gradient is beta * sigmoid(-beta *
    gap) per pair, so a small beta damps the push on hard (possibly false) negatives."""
    return pair_mean(-F.logsigmoid(beta * (pos[:, None] - neg)), valid)


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


def sampled_softmax(pos, neg, log_q=None, valid=None):
    """Cross-entropy over [positive, K negatives] (Jean et al. 2015). With the proposal log-probabilities
    ``log_q`` of the negatives, each negative logit becomes neg - log(K q): then the sum over negatives is an
    unbiased estimate of the partition function over the catalog, and with all other items as negatives
    under a uniform q it is exactly the full softmax."""
    if log_q is not None:
        neg = neg - (log_q + math.log(neg.shape[1]))
    logits = torch.cat([pos[:, None], masked(neg, valid)], dim=1)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def entry_bce(pos, neg, labels, weights):
    """BCE with logits averaged over every entry that stays in the loss: the positive (label 1) and its K
    negatives (label 0, or 1 where reversed), as the authors' code averages over non-padding entries."""
    logits = torch.cat([pos[:, None], neg], dim=1)
    targets = torch.cat([torch.ones_like(pos)[:, None], labels], dim=1)
    weight = torch.cat([torch.ones_like(pos)[:, None], weights], dim=1)
    terms = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (terms * weight).sum() / weight.sum()


# name -> the loss of (pos [N], neg [N, K], log_q or None, valid [N, K] or None, config, real item count)
FORMULAS = {
    "bpr": lambda pos, neg, log_q, valid, config, n: bpr(pos, neg, valid),
    "soft_bpr": lambda pos, neg, log_q, valid, config, n: soft_bpr(pos, neg, config["soft_bpr_beta"], valid),
    "bce": lambda pos, neg, log_q, valid, config, n: bce(pos, masked(neg, valid)),
    "gbce": lambda pos, neg, log_q, valid, config, n: gbce(pos, masked(neg, valid), n, config["gbce_t"]),
    "sampled_softmax": lambda pos, neg, log_q, valid, config, n: sampled_softmax(
        pos, neg, log_q if config["sampled_softmax_logq"] else None, valid),
}


class PairLoss:
    """The configured loss over the positive's score [N] and its K negatives' scores [N, K], as one callable
    ``loss(pos, neg, log_q=None)``; ``registry.LOSSES`` names it for every formula above."""

    whole_catalog = False  # True: the loss scores every item itself (FullSoftmaxLoss), no negatives are drawn

    def __init__(self, config, num_items):
        self.name = config["loss"]
        self.config = config
        self.num_items = num_items  # real items, padding excluded
        self.formula = FORMULAS.get(self.name)  # None for the full softmax

    @classmethod
    def check_config(cls, config):
        """Combinations this loss cannot serve, before any data is loaded; none by default."""

    def __call__(self, pos, neg, log_q=None, valid=None):
        return self.formula(pos, neg, log_q, valid, self.config, self.num_items)


class FullSoftmaxLoss(PairLoss):
    """Cross-entropy over every item: RecBole's CE objective on the plugin's rows (all positions of a sequence
    in one pass), the reference every sampled configuration is measured against, at the cost of a
    [N, n_items] logit matrix per batch. No negatives are drawn."""

    whole_catalog = True

    @classmethod
    def check_config(cls, config):
        if config["sampler"] != "uniform":
            raise ConfigError(
                f"config key 'sampler' = '{config['sampler']}' has no effect with loss 'full_softmax', which "
                "scores every item and draws no negatives; leave sampler at its default (uniform)")

    def __call__(self, logits, positives):
        """``logits`` [N, n_items] with the padding column at -inf; ``positives`` [N]."""
        return F.cross_entropy(logits, positives)
