"""Config layering (plugin defaults < method preset < user files < dict < command line) and the one clear
message every bad value gets, before any data is loaded or any file is written."""

import sys

import pytest

from recbole_negs.errors import ConfigError
from recbole_negs.config.keys import KEYS

from conftest import small_config

# One bad value per plugin key; a new key must add its own here (test_every_key_has_a_bad_value).
BAD_VALUES = {
    "sampler": "bogus", "loss": "hinge", "trainer": "fancy", "method": "xyz", "neg_sample_num": 0,
    "embedding_l2": -0.01, "neg_exclude": "everything", "neg_sample_replacement": "yes", "checkpoint_file": "/no/such/file.pth",
    "seq_train_mode": "random", "seq_long_policy": "first", "popularity_alpha": -1.0, "dns_candidates": 0,
    "genni_alpha": -0.5, "genni_beta": 1.5, "genni_beta_schedule": 0, "genni_preselect": "per_user",
    "genni_curriculum": "on", "genni_alpha_step": 0.0, "genni_alpha_bounds": [3.0, 1.0], "srns_pool_size": 0,
    "srns_s1": 0, "srns_s2": -2, "srns_tau": 0.0, "srns_alpha": "big", "srns_warmup": -1, "srns_mode": "fake",
    "soft_bpr_beta": 0.0, "gbce_t": 1.5, "sampled_softmax_logq": "maybe", "ufn_reverse_threshold": 0,
    "ufn_lambda": -0.3, "ufn_ema_decay": 1.0, "ufn_warmup_epochs": "soon", "ufn_teacher_dropout": 1,
    "ufn_evaluate": "both", "ufn_variant": "ufn+", "ufn_variance_threshold": 0.0, "ufn_adam_betas": [0.9, 1.2], "eval_mask_history": "yes", "eval_neg_exclude": "test", "eval_neg_seed": 1.5,
    "eval_max_users": 0, "neg_share": "user", "seq_batch_size_unit": "epochs", "genni_group_rows": 0,
    "mixed_uniform_num": 0, "plot": "yes",
}


def test_every_key_has_a_bad_value():
    assert sorted(BAD_VALUES) == sorted(key.name for key in KEYS)


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_bad_value_names_key_and_allowed_values(key, in_tmp):
    with pytest.raises(ConfigError) as error:
        small_config("BPR", **{key: BAD_VALUES[key]})
    message = str(error.value)
    assert f"'{key}'" in message and "allowed" in message, message
    assert list(in_tmp.iterdir()) == [], "a bad config must not write anything"


@pytest.mark.parametrize("key,value", [("genni_beta", 0.0), ("soft_bpr_beta", 10.5), ("gbce_t", -0.1),
                                       ("neg_sample_num", 2.5), ("neg_sample_num", True)])
def test_range_edges(key, value):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        small_config("BPR", **{key: value})


def test_misspelt_plugin_key_is_reported_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'neg_sample_num'"):
        small_config("BPR", neg_sample_nums=3)


def test_recbole_dynamic_dns_beside_a_plugin_sampler_is_refused():
    dynamic = {"distribution": "uniform", "sample_num": 1, "dynamic": True, "candidate_num": 16}
    with pytest.raises(ConfigError, match="dynamic: True.*sampler: dns"):
        small_config("BPR", sampler="uniform", train_neg_sample_args=dynamic)


def test_plugin_sampler_owns_the_negatives_even_for_ce_models():
    config = small_config("SASRec", sampler="uniform", loss_type="CE")
    assert config["train_neg_sample_args"]["distribution"] == "none"


def test_sampler_none_keeps_recbole_ce_without_the_stock_negative():
    config = small_config("SASRec", sampler="none")
    assert config["loss_type"] == "CE"
    assert config["train_neg_sample_args"]["distribution"] == "none"


def test_sampler_none_with_ce_and_explicit_negatives_is_refused():
    with pytest.raises(ConfigError, match="train_neg_sample_args"):
        small_config("SASRec", sampler="none", train_neg_sample_args={"distribution": "uniform", "sample_num": 1})


def test_sampler_none_keeps_recbole_negatives_for_bpr():
    config = small_config("BPR", sampler="none")
    assert config["train_neg_sample_args"]["distribution"] == "uniform"


def test_model_that_scores_no_user_item_pairs_is_refused():
    with pytest.raises(ConfigError, match="cannot be served by a plugin sampler"):
        small_config("FM", sampler="uniform")


def test_all_positions_needs_per_position_outputs():
    with pytest.raises(ConfigError, match="seq_train_mode"):
        small_config("NARM", sampler="uniform", seq_train_mode="all_positions")
    assert small_config("NARM", sampler="uniform", seq_train_mode="prefix")["seq_train_mode"] == "prefix"


def test_dns_needs_at_least_k_candidates():
    with pytest.raises(ConfigError, match="'dns_candidates' = 2 is smaller than neg_sample_num = 4"):
        small_config("BPR", sampler="dns", dns_candidates=2, neg_sample_num=4)


def test_names_are_case_insensitive():
    config = small_config("BPR", sampler="Uniform", loss="BPR")
    assert (config["sampler"], config["loss"]) == ("uniform", "bpr")


def test_sampler_file_suggests_its_loss_unless_the_user_names_one():
    assert small_config("SASRec", sampler="genni")["loss"] == "bce"
    assert small_config("SASRec", sampler="genni", loss="gbce")["loss"] == "gbce"


def test_method_preset_and_per_model_file():
    lightgcn = small_config("LightGCN", method="pdns")
    assert (lightgcn["sampler"], lightgcn["loss"], lightgcn["dns_candidates"], lightgcn["soft_bpr_beta"]) == (
        "dns", "soft_bpr", 64, 0.01)
    from recbole_negs.config.configurator import NegsConfig

    plain = NegsConfig(model="LightGCN", dataset="ml-100k", config_dict={"method": "pdns"})  # no test overrides
    assert (plain["learning_rate"], plain["embedding_size"], plain["n_layers"], plain["embedding_l2"],
            plain["reg_weight"], plain["train_batch_size"]) == (0.005, 64, 3, 0.0001, 0.0, 2048)  # Table 6, Gowalla
    mf = small_config("BPR", method="pdns")
    assert (mf["dns_candidates"], mf["soft_bpr_beta"], mf["learning_rate"], mf["embedding_l2"]) == (64, 0.2, 0.001,
                                                                                                   0.01)
    assert small_config("BPR")["embedding_l2"] == 0.0  # no L2 unless a preset or the user asks
    assert small_config("BPR", method="srns")["embedding_l2"] == 0.01  # SRNS_real/run.sh --regs 0.01
    genni = small_config("SASRec", method="genni")
    assert (genni["sampler"], genni["loss"], genni["genni_alpha"], genni["genni_beta"], genni["neg_exclude"]) == (
        "genni", "bce", 2.5, 1.0, "target")


def test_user_values_beat_the_preset():
    config = small_config("BPR", method="pdns", soft_bpr_beta=0.2, dns_candidates=8)
    assert (config["soft_bpr_beta"], config["dns_candidates"]) == (0.2, 8)


def test_config_files_dict_and_command_line_priority(tmp_path, monkeypatch):
    first = tmp_path / "a.yaml"
    first.write_text("sampler: popularity\npopularity_alpha: 0.5\nneg_sample_num: 2\n")
    second = tmp_path / "b.yaml"
    second.write_text("popularity_alpha: 0.25\n")
    from recbole_negs.config.configurator import NegsConfig

    config = NegsConfig("BPR", "ml-100k", config_file_list=[str(first), str(second)])
    assert (config["sampler"], config["popularity_alpha"], config["neg_sample_num"]) == ("popularity", 0.25, 2)
    config = NegsConfig("BPR", "ml-100k", config_file_list=[str(first), str(second)],
                        config_dict={"neg_sample_num": 3})
    assert config["neg_sample_num"] == 3
    monkeypatch.setattr(sys, "argv", ["run", "--neg_sample_num=4", "--loss=soft_bpr"])
    config = NegsConfig("BPR", "ml-100k", config_file_list=[str(first)], config_dict={"neg_sample_num": 3})
    assert (config["neg_sample_num"], config["loss"], config["soft_bpr_beta"]) == (4, "soft_bpr", 0.1)


def test_scientific_notation_in_plugin_files_reads_as_float():
    from recbole_negs.config.properties import _FloatAwareLoader
    import yaml

    assert yaml.load("x: 1e-4", Loader=_FloatAwareLoader) == {"x": 1e-4}


def test_ufnrec_needs_a_sequential_model_in_all_position_mode_with_uniform_negatives():
    with pytest.raises(ConfigError, match="'trainer' = 'ufnrec' needs a sequential model"):
        small_config("BPR", trainer="ufnrec")
    with pytest.raises(ConfigError, match="'seq_train_mode' = 'prefix'.*allowed: all_positions"):
        small_config("SASRec", method="ufnrec", seq_train_mode="prefix")
    with pytest.raises(ConfigError, match="'sampler' = 'popularity'.*allowed: uniform"):
        small_config("SASRec", trainer="ufnrec", sampler="popularity")


def test_ufnrec_preset_carries_the_code_settings():
    config = small_config("SASRec", method="ufnrec")
    assert (config["trainer"], config["neg_sample_num"], config["ufn_reverse_threshold"], config["ufn_lambda"],
            config["ufn_ema_decay"], config["ufn_adam_betas"], config["seq_long_policy"]) == (
        "ufnrec", 100, 5, 0.3, 0.999, [0.9, 0.98], "last")


def test_key_table_shows_each_samplers_own_default():
    """genni's file sets loss: bce and neg_exclude: target; the README's table must say so beside the overall
    default, not show bpr / history alone."""
    from recbole_negs.config.keys import markdown_table
    from recbole_negs.config.properties import all_defaults, sampler_overrides

    table = markdown_table(all_defaults(), sampler_overrides())
    loss_row = next(line for line in table.splitlines() if line.startswith("| `loss` |"))
    exclude_row = next(line for line in table.splitlines() if line.startswith("| `neg_exclude` |"))
    assert "`bpr` (genni: `bce`" in loss_row and "`history` (genni: `target`)" in exclude_row
