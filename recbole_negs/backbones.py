"""One small adapter per RecBole model family: encode the batch once, expose the item table, score items.

Every adapter turns a batch into flat targets: ``N`` (user, positive) pairs with one query vector each
(``[B]`` rows for general models and RecBole's prefix rows, every valid position of ``[B, L]`` for all-position
sequence rows, BERT4Rec's masked positions). Samplers score candidates from those queries with one batched
product against the item table, detached; the loss scores the chosen negatives again with gradients.
"""

from dataclasses import dataclass, field
from logging import getLogger
from typing import Optional

import torch

from recbole.model.abstract_recommender import GeneralRecommender, SequentialRecommender
from recbole.utils import ModelType

from recbole_negs.errors import ConfigError
from recbole_negs.losses import squared_l2
from recbole_negs.scoring import (CandidateScorer, PredictScorer, train_catalog_scores, train_scores,
                                  train_shared_scores)
from recbole_negs.sequence_rows import TARGET_SEQ, WINDOW_START

# Sequential models whose forward(item_seq, item_seq_len) returns the last position's query, scored by a
# dot product with item_embedding (their full_sort_predict is exactly that). The value names the sub-module
# whose output holds every position, for all-position training; None means prefix rows only.
CAUSAL_SEQUENCE_MODELS = {
    "SASRec": "trm_encoder",
    "GRU4Rec": "dense",
    "SASRecF": None,
    "GRU4RecF": None,
    "NARM": None,
    "STAMP": None,
    "LightSANs": None,
    "SRGNN": None,
    "GCSAN": None,
}
MASKED_SEQUENCE_MODELS = ("BERT4Rec",)
# General models with user and item tables scored by a dot product.
MATRIX_FACTORIZATION_MODELS = ("BPR",)
# Graph models whose forward() propagates and returns (user_all, item_all); their L2 term is kept.
GRAPH_MODELS = ("LightGCN", "NGCF")


@dataclass
class Encoded:
    """The batch after one encoder pass, flattened to its N targets."""

    users: torch.Tensor  # [N]
    positives: torch.Tensor  # [N]
    queries: Optional[torch.Tensor]  # [N, D] with gradients; None for the predict() fallback
    item_vectors: Optional[torch.Tensor] = None  # [n_items, D], the table the queries are scored against
    item_bias: Optional[torch.Tensor] = None  # [n_items] (BERT4Rec's output_bias)
    positions: Optional[torch.Tensor] = None  # [N] index of the target in the user's training sequence
    layout: Optional[torch.Tensor] = None  # [B, L] bool: where the N targets sit in the padded batch
    interaction: object = None
    extra: dict = field(default_factory=dict)


class Backbone:
    """Adapter base: dot-product scoring against ``Encoded.item_vectors`` (+ bias)."""

    family = ""
    slow = False
    has_user_queries = False  # a query vector per user (user_scorer works): general models with user tables
    regularized = False  # the loss adds an L2 term on the batch's embeddings (regularization())
    all_position_shift = None  # for all-position rows: 1 = causal (targets shifted), 0 = masked in place

    def __init__(self, model, config):
        self.model = model
        self.config = config
        self.USER_ID = config["USER_ID_FIELD"]
        self.ITEM_ID = config["ITEM_ID_FIELD"]
        self.n_items = model.n_items

    def encode(self, interaction) -> Encoded:
        raise NotImplementedError

    def score(self, enc: Encoded, ids):
        """Scores with gradients of ``ids`` [N, C] for the N targets -> [N, C] (``scoring.train_scores``)."""
        return train_scores(enc.queries, enc.item_vectors, enc.item_bias, ids)

    def score_shared(self, enc: Encoded, shared, rows=None):
        """Scores with gradients of shared candidates: [C] for the batch or [R, C] per batch row -> [N, C]."""
        return train_shared_scores(enc.queries, enc.item_vectors, enc.item_bias, shared, rows, enc.layout)

    def score_catalog(self, enc: Encoded):
        """Scores with gradients of every item: [N, n_items] (column 0 is padding)."""
        return train_catalog_scores(enc.queries, enc.item_vectors, enc.item_bias)

    def scorer(self, enc: Encoded):
        """What a model-aware sampler sees of this batch: detached scores of candidates."""
        return CandidateScorer(enc.queries, enc.item_vectors, enc.item_bias)

    def regularization(self, enc: Encoded, neg_ids):
        return 0.0

    def user_scorer(self):
        """Detached scores of any (user, item) pair from the current weights: a CandidateScorer whose rows are all
        users. Only general models have a query per user (SRNS's epoch-end snapshots need one)."""
        raise ConfigError(f"model '{self.config['model']}' has no per-user query vector")


class MatrixFactorization(Backbone):
    family = "matrix factorization"
    has_user_queries = True

    @property
    def regularized(self):
        return bool(_config_value(self.config, "embedding_l2"))

    def encode(self, interaction):
        users, positives = interaction[self.USER_ID], interaction[self.ITEM_ID]
        return Encoded(users, positives, self.model.user_embedding(users), self.model.item_embedding.weight,
                       interaction=interaction)

    def user_scorer(self):
        return CandidateScorer(self.model.user_embedding.weight, self.model.item_embedding.weight)

    def regularization(self, enc, neg_ids):
        """``embedding_l2``: the papers' squared L2 on the batch's users, positives and negatives (RecBole's BPR
        model has none)."""
        return squared_l2(_config_value(self.config, "embedding_l2"), enc.queries, enc.item_vectors[enc.positives],
                          enc.item_vectors[neg_ids])


class GraphPropagation(Backbone):
    """One propagation per batch (as RecBole's own loss does), then dot products of the propagated tables."""

    family = "graph propagation"
    has_user_queries = True
    regularized = True

    def encode(self, interaction):
        model = self.model
        # RecBole's graph models cache the propagated tables for evaluation; training invalidates them.
        model.restore_user_e, model.restore_item_e = None, None
        users, positives = interaction[self.USER_ID], interaction[self.ITEM_ID]
        user_all, item_all = model.forward()
        return Encoded(users, positives, user_all[users], item_all, interaction=interaction,
                       extra={"user_all": user_all})

    def regularization(self, enc, neg_ids):
        """RecBole's own term (``reg_weight``, as the model's loss computes it), plus ``embedding_l2``: the papers'
        squared L2 on the batch's ego (unpropagated) embeddings."""
        model = self.model
        l2 = _config_value(self.config, "embedding_l2")
        papers = squared_l2(l2, model.user_embedding(enc.users), model.item_embedding(enc.positives),
                            model.item_embedding(neg_ids)) if l2 else 0.0
        return papers + self._recbole_regularization(enc, neg_ids)

    def _recbole_regularization(self, enc, neg_ids):
        model = self.model
        if not getattr(model, "reg_weight", 0):
            return 0.0
        if self.config["model"] == "LightGCN":  # L2 on the ego (unpropagated) embeddings of the batch
            parts = (model.user_embedding(enc.users), model.item_embedding(enc.positives),
                     model.item_embedding(neg_ids))
            return model.reg_weight * model.reg_loss(*parts, require_pow=model.require_pow)
        parts = (enc.queries, enc.item_vectors[enc.positives], enc.item_vectors[neg_ids])  # NGCF
        return model.reg_weight * model.reg_loss(*parts)

    def user_scorer(self):
        with torch.no_grad():  # one propagation for all users
            user_all, item_all = self.model.forward()
        return CandidateScorer(user_all, item_all)


class _Sequence(Backbone):
    def __init__(self, model, config):
        super().__init__(model, config)
        self.ITEM_SEQ, self.ITEM_SEQ_LEN = model.ITEM_SEQ, model.ITEM_SEQ_LEN
        self.POS_ITEM_ID = model.POS_ITEM_ID
        self.all_positions = config["seq_train_mode"] == "all_positions"
        if self.all_positions:
            self.all_position_shift = self.row_shift

    row_shift = None


class CausalSequence(_Sequence):
    """SASRec, GRU4Rec and the like. Prefix rows: the query is forward()'s output. All-position rows: a
    forward hook on the sub-module that computes every position captures its output during that same
    forward pass (dropout and masks included), so no copy of the model's forward is needed."""

    family = "sequential (causal)"
    row_shift = 1

    def __init__(self, model, config):
        super().__init__(model, config)
        self._captured = None
        self._capturing = False
        if self.all_positions:
            module = getattr(model, CAUSAL_SEQUENCE_MODELS[config["model"]])
            module.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output):
        if self._capturing:
            self._captured = output[-1] if isinstance(output, (list, tuple)) else output

    def encode(self, interaction):
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        table = self.model.item_embedding.weight
        if not self.all_positions:
            queries = self.model.forward(item_seq, item_seq_len)
            return Encoded(interaction[self.USER_ID], interaction[self.POS_ITEM_ID], queries, table,
                           interaction=interaction)
        self._capturing = True
        try:
            self.model.forward(item_seq, item_seq_len)
            hidden = self._captured  # [B, L, D]
        finally:
            self._capturing, self._captured = False, None
        targets = interaction[TARGET_SEQ]
        layout = targets > 0
        steps = torch.arange(targets.shape[1], device=targets.device)
        positions = interaction[WINDOW_START][:, None] + 1 + steps  # query t predicts sequence item t+1
        users = interaction[self.USER_ID][:, None].expand_as(targets)
        return Encoded(users[layout], targets[layout], hidden[layout], table, positions=positions[layout],
                       layout=layout, interaction=interaction)


class MaskedSequence(_Sequence):
    """BERT4Rec: the targets are the masked positions of RecBole's mask_itemseq transform (its own negatives
    are ignored); scores add ``output_bias``, and the mask token's row is left out of the table."""

    family = "sequential (masked)"
    row_shift = 0

    def encode(self, interaction):
        model = self.model
        masked_seq = interaction[model.MASK_ITEM_SEQ]
        pos_items, masked_index = interaction[model.POS_ITEMS], interaction[model.MASK_INDEX]
        hidden = model.forward(masked_seq)  # [B, L, D]
        layout = pos_items > 0  # [B, M]; RecBole pads both lists with 0 on the left
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None].expand_as(masked_index)
        queries = hidden[rows[layout], masked_index[layout]]
        users = interaction[self.USER_ID][:, None].expand_as(pos_items)[layout]
        positions = None
        if WINDOW_START in interaction:
            positions = (interaction[WINDOW_START][:, None] + masked_index)[layout]
        return Encoded(users, pos_items[layout], queries, model.item_embedding.weight[: self.n_items],
                       model.output_bias, positions=positions, layout=layout, interaction=interaction)


class PredictFallback(Backbone):
    """Any model with ``predict``: scores come from ``model.predict`` on the batch repeated per candidate,
    which re-runs the model per candidate. It works everywhere and is slow; the log says so."""

    family = "predict() fallback"
    slow = True

    def __init__(self, model, config):
        super().__init__(model, config)
        self.sequential = config["MODEL_TYPE"] == ModelType.SEQUENTIAL
        getLogger().warning(
            f"recbole-negs: model '{config['model']}' has no adapter; negatives are scored through "
            "model.predict on the batch repeated per candidate, which is slow")

    def encode(self, interaction):
        item_field = self.model.POS_ITEM_ID if self.sequential else self.ITEM_ID
        return Encoded(interaction[self.USER_ID], interaction[item_field], None, interaction=interaction)

    def _predict(self, interaction, ids):
        from recbole.data.interaction import Interaction

        n, c = ids.shape
        batch = interaction.repeat_interleave(c)
        batch.update(Interaction({self.ITEM_ID: ids.reshape(-1)}))
        return self.model.predict(batch).reshape(n, c)

    def score(self, enc, ids):
        return self._predict(enc.interaction, ids)

    def scorer(self, enc):
        interaction = enc.interaction

        def predict(rows, ids):
            return self._predict(interaction if rows is None else interaction[rows], ids)

        return PredictScorer(predict, len(enc.positives), self.n_items, enc.positives.device)


def adapter_class(config):
    """The adapter for ``config['model']``, or a ConfigError saying why the model cannot be served."""
    name, model_class = config["model"], config.model_class
    if name in CAUSAL_SEQUENCE_MODELS:
        if config["seq_train_mode"] == "all_positions" and CAUSAL_SEQUENCE_MODELS[name] is None:
            raise ConfigError(
                f"config key 'seq_train_mode' = 'all_positions' is not available for model '{name}': its "
                "forward pass keeps only the last position; use seq_train_mode: prefix (allowed for it: prefix)")
        return CausalSequence
    if name in MASKED_SEQUENCE_MODELS:
        return MaskedSequence
    if name in MATRIX_FACTORIZATION_MODELS:
        return MatrixFactorization
    if name in GRAPH_MODELS:
        return GraphPropagation
    if not issubclass(model_class, (GeneralRecommender, SequentialRecommender)):
        raise ConfigError(
            f"model '{name}' ({config['MODEL_TYPE'].name.lower()} model) cannot be served by a plugin sampler: "
            "only general and sequential models score (user, item) pairs; use sampler: none")
    if config["MODEL_TYPE"] == ModelType.SEQUENTIAL and config["seq_train_mode"] == "all_positions":
        raise ConfigError(
            f"config key 'seq_train_mode' = 'all_positions' needs a model with per-position outputs "
            f"({', '.join(k for k, v in CAUSAL_SEQUENCE_MODELS.items() if v)}, BERT4Rec); model '{name}' "
            "is served through model.predict with seq_train_mode: prefix")
    return PredictFallback


def build_backbone(model, config):
    return adapter_class(config)(model, config)


def _config_value(config, key, default=0.0):
    """A plugin key that a hand-built config (tests) may lack."""
    return config[key] if key in config and config[key] is not None else default
