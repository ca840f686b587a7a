"""loss: full_softmax, the full-softmax CE on the plugin's rows (the reference the sampled paths are measured
against)."""

import pytest
import torch

from recbole_negs.errors import ConfigError
from recbole_negs.losses import sampled_softmax

from conftest import build, small_config


@pytest.fixture(scope="module")
def sasrec(tmp_path_factory):
    import os
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("catalog"))
    try:
        config, model, train_data, *_ = build("SASRec", loss="full_softmax")
    finally:
        os.chdir(old)
    model.eval()  # no dropout: two computations of one batch see the same encoding
    return config, model, next(iter(train_data))


def test_loss_is_softmax_over_the_target_and_every_other_item(sasrec):
    """The catalog loss equals sampled softmax whose negatives are all items but the target and the padding."""
    _, model, batch = sasrec
    full = model.calculate_loss(batch)
    enc = model.backbone.encode(batch)
    n_items = model.backbone.n_items
    items = torch.arange(1, n_items).expand(len(enc.positives), -1)
    others = items[items != enc.positives[:, None]].view(len(enc.positives), n_items - 2)
    pos, neg = model.score_positives_and_negatives(enc, others)
    assert torch.allclose(full, sampled_softmax(pos, neg), rtol=1e-5, atol=1e-6)


def test_every_item_gets_a_gradient_and_padding_none(sasrec):
    """Unlike a sampled loss, one batch pushes every item's embedding (the padding row stays untouched)."""
    _, model, batch = sasrec
    model.zero_grad()
    model.calculate_loss(batch).backward()
    grad = model.model.item_embedding.weight.grad
    assert bool((grad[1:].abs().sum(dim=1) > 0).all())
    assert float(grad[0].abs().sum()) == 0.0


def test_statistics_are_the_rank_of_the_positive(sasrec):
    """share_outscoring is the mean share of other items scored above the positive: (rank - 1) / (n - 2)."""
    _, model, batch = sasrec
    model.sampler.reset_statistics()
    with torch.no_grad():
        model.calculate_loss(batch)
        enc = model.backbone.encode(batch)
        logits = model.backbone.score_catalog(enc)[:, 1:]
    pos = logits.gather(1, (enc.positives - 1)[:, None])
    expected = float((logits > pos).sum()) / (len(pos) * (logits.shape[1] - 1))
    assert model.sampler.statistics()["share_outscoring"] == pytest.approx(expected, rel=1e-6)


def test_full_softmax_refuses_a_sampler_it_would_ignore(in_tmp):
    with pytest.raises(ConfigError) as error:
        small_config("SASRec", sampler="dns", loss="full_softmax")
    assert "'sampler' = 'dns'" in str(error.value) and "full_softmax" in str(error.value)
    assert list(in_tmp.iterdir()) == []


def test_old_catalog_sampler_names_the_new_spelling(in_tmp):
    with pytest.raises(ConfigError) as error:
        small_config("SASRec", sampler="catalog")
    assert "'sampler' = 'catalog'" in str(error.value) and "loss: full_softmax" in str(error.value)
