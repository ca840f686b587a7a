"""The training path of the plugin: any supported RecBole model, trained as encode once -> sample -> loss.

``NegsModel`` wraps the RecBole model. Its ``calculate_loss`` is the plugin's training step; ``predict`` and
``full_sort_predict`` go straight to the wrapped model, and its ``state_dict`` *is* the wrapped model's, so
RecBole's evaluators, checkpoints and ``load_state_dict`` see a plain RecBole model.
"""

from dataclasses import dataclass

import torch

from recbole_negs.backbones import Encoded, build_backbone
from recbole_negs.samplers.base import Negatives, Targets


@dataclass
class Step:
    """One batch after encode -> sample -> score: what a loss needs."""

    enc: Encoded
    negatives: Negatives
    pos: torch.Tensor  # [N] scores of the positives, with gradients
    neg: torch.Tensor  # [N, K] scores of the negatives, with gradients
    rows: torch.Tensor  # [N] the batch row of each target (target_rows)


def target_rows(enc):
    """([N] the batch row of each target, the number of rows): its sequence for all-position rows, else its
    own row. Shared sets per row, their scores and the per-target expansion all index by it."""
    if enc.layout is None:
        n = len(enc.positives)
        return torch.arange(n, device=enc.positives.device), n
    return torch.nonzero(enc.layout, as_tuple=True)[0], enc.layout.shape[0]


class NegsModel(torch.nn.Module):
    def __init__(self, model, config, sampler, loss):
        super().__init__()
        self.model = model
        self.config = config
        self.backbone = build_backbone(model, config)
        self.sampler = sampler
        self.loss = loss
        self.device = config["device"]

    # --- training
    def encode_and_sample(self, interaction):
        """One encoder pass, then the sampler on the N flat targets (scores detached, under no_grad). Returns
        the encoding, the negatives and each target's batch row."""
        enc = self.backbone.encode(interaction)
        scorer = self.backbone.scorer(enc) if self.sampler.model_aware else None
        rows, n_rows = target_rows(enc)
        negatives = self.sampler(Targets(enc.users, enc.positives, scorer, enc.positions, rows, n_rows))
        return enc, negatives, rows

    def score_positives_and_negatives(self, enc, negative_ids):
        """Scores with gradients: [N] for the positives, [N, K] for the negatives, in one gather."""
        scores = self.backbone.score(enc, torch.cat([enc.positives[:, None], negative_ids], dim=1))
        return scores[:, 0], scores[:, 1:]

    def score_step(self, enc, negatives, rows):
        """[N] positive and [N, C] negative scores with gradients: per-target ids in one gather, a shared set
        in one matmul (N x C memory); ``rows`` [N] picks each target's set when there is one per row."""
        if negatives.shared is None:
            return self.score_positives_and_negatives(enc, negatives.ids)
        pos = self.backbone.score(enc, enc.positives[:, None])[:, 0]
        return pos, self.backbone.score_shared(enc, negatives.shared, rows)

    def step(self, interaction, place=None):
        """The plugin's training step up to the loss: encode once -> sample -> score -> record statistics.
        ``place(enc, negatives) -> Negatives`` may rearrange the drawn negatives before they are scored
        (UFNRec puts a target's recorded negatives in the first slots)."""
        enc, negatives, rows = self.encode_and_sample(interaction)
        if place is not None:
            negatives = place(enc, negatives)
        pos, neg = self.score_step(enc, negatives, rows)
        self.sampler.record(pos.detach(), neg.detach(), negatives.valid)
        return Step(enc, negatives, pos, neg, rows)

    def calculate_loss(self, interaction):
        if self.loss.whole_catalog:
            return self.full_softmax_loss(interaction)
        s = self.step(interaction)
        loss = self.loss(s.pos, s.neg, s.negatives.log_q, s.negatives.valid)
        regularization = 0.0
        if self.backbone.regularized:
            regularization = self.backbone.regularization(s.enc, s.negatives.per_target_ids(s.rows))
        return loss + regularization

    def full_softmax_loss(self, interaction):
        """Cross-entropy over every item (loss: full_softmax): the padding column never competes."""
        enc = self.backbone.encode(interaction)
        logits = self.backbone.score_catalog(enc)
        logits = logits.index_fill(1, torch.zeros(1, dtype=torch.long, device=logits.device), float("-inf"))
        self.sampler.record_catalog(logits.detach(), enc.positives)
        none = enc.positives.new_zeros((len(enc.positives), 0))
        return self.loss(logits, enc.positives) + self.backbone.regularization(enc, none)

    @torch.no_grad()
    def sample_negatives(self, interaction):
        """The negatives the sampler draws for a batch, padded to the batch's layout: [B, K] for one target per
        row, [B, L, K] for all-position rows (and [B, M, K] for BERT4Rec's M masked slots); 0 = no target."""
        enc, negatives, _ = self.encode_and_sample(interaction)
        if enc.layout is None:
            return negatives.ids
        padded = negatives.ids.new_zeros(enc.layout.shape + (negatives.ids.shape[1],))
        padded[enc.layout] = negatives.ids
        return padded

    # --- evaluation and persistence: the wrapped RecBole model
    def predict(self, interaction):
        return self.model.predict(interaction)

    def full_sort_predict(self, interaction):
        return self.model.full_sort_predict(interaction)

    def state_dict(self, *args, **kwargs):
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True, **kwargs):
        return self.model.load_state_dict(state_dict, strict=strict, **kwargs)

    def other_parameter(self):
        return self.model.other_parameter()

    def load_other_parameter(self, para):
        self.model.load_other_parameter(para)

    def __str__(self):
        return (f"{self.model}\nrecbole-negs: sampler={self.sampler.name}, loss={self.loss.name}, "
                f"K={self.sampler.num}, adapter={self.backbone.family}")
