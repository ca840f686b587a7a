"""Hyper-parameter search with RecBole's HyperTuning on the plugin's path: a real 2-trial search on ml-100k
writes both trials' parameters and results to the output file; the exhaustive grid visits every combination
once; searched and fixed keys cannot collide silently."""

import re

import pytest
import yaml

pytest.importorskip("hyperopt")

from recbole_negs import hyper  # noqa: E402

from conftest import SMALL  # noqa: E402


def _yaml(path, values):
    path.write_text(yaml.safe_dump(values))
    return str(path)


def _trials(text):
    """RecBole's export_result blocks -> {params line: (valid dict, test dict)}."""
    def numbers(line):
        return {key: float(value) for key, value in re.findall(r"(\S+) : (\S+)", line)}

    out = {}
    for block in text.strip().split("\n\n"):
        params, valid_head, valid, test_head, test = block.strip().split("\n")
        assert (valid_head, test_head) == ("Valid result:", "Test result:")
        out[params] = (numbers(valid), numbers(test))
    return out


@pytest.mark.slow
def test_two_trial_search_writes_both_trials(in_tmp, monkeypatch):
    returned = {}
    real = hyper.objective_function

    def recording(config_dict=None, config_file_list=None, saved=True):
        result = real(config_dict, config_file_list, saved)
        returned[config_dict["dns_candidates"]] = result
        return result

    monkeypatch.setattr(hyper, "objective_function", recording)
    fixed = {**SMALL, "model": "BPR", "dataset": "ml-100k", "sampler": "dns", "train_batch_size": 2048}
    config = _yaml(in_tmp / "bpr.yaml", fixed)
    (in_tmp / "dns.hyper").write_text("dns_candidates choice [4,16]\n")

    code = hyper.main(["--config_files", config, "--params_file", "dns.hyper", "--output_file", "dns.result",
                       "--epochs=1"])

    assert code == 0
    assert sorted(returned) == [4, 16], "one trial per value of the grid"
    trials = _trials((in_tmp / "dns.result").read_text())
    assert sorted(trials) == ["dns_candidates:16", "dns_candidates:4"]
    for value, result in returned.items():
        assert result["model"] == "BPR" and result["valid_score_bigger"] is True
        assert result["best_valid_score"] == result["best_valid_result"]["ndcg@10"]
        assert trials[f"dns_candidates:{value}"] == (result["best_valid_result"], result["test_result"])
    assert len(list((in_tmp / "log" / "BPR").glob("*.log"))) == 2, "each trial logs into its own file"


def _fake_objective(seen):
    def objective(config_dict=None, config_file_list=None, saved=True):
        seen.append(dict(config_dict))
        score = float(sum(v for v in config_dict.values() if isinstance(v, (int, float))))
        result = {"ndcg@10": score}
        return {"model": "BPR", "best_valid_score": score, "valid_score_bigger": True,
                "best_valid_result": result, "test_result": result}
    return objective


def test_exhaustive_search_visits_every_combination_once(in_tmp, monkeypatch):
    seen = []
    monkeypatch.setattr(hyper, "objective_function", _fake_objective(seen))
    (in_tmp / "grid.hyper").write_text("dns_candidates choice [8,16,32]\nsoft_bpr_beta choice [0.1, 0.3]\n\n")
    tuner = hyper.search("grid.hyper", output_file="grid.result", early_stop=100)
    combos = [(c["dns_candidates"], c["soft_bpr_beta"]) for c in seen]
    assert sorted(combos) == sorted((h, b) for h in (8, 16, 32) for b in (0.1, 0.3))
    assert tuner.best_params == {"dns_candidates": 32, "soft_bpr_beta": 0.3}
    assert len(_trials((in_tmp / "grid.result").read_text())) == 6


def test_random_search_hands_integer_keys_ints_to_the_config(in_tmp, monkeypatch):
    """hyperopt's quniform yields 16.0, which the plugin's int keys refuse; the objective passes 16."""
    import recbole_negs.quick_start as quick_start

    seen = []
    fake_run = _fake_objective(seen)
    monkeypatch.setattr(quick_start, "run_recbole_negs", lambda config_file_list=None, config_dict=None, saved=True:
                        {k: v for k, v in fake_run(config_dict).items() if k != "model"})
    config = _yaml(in_tmp / "bpr.yaml", {**SMALL, "model": "BPR", "dataset": "ml-100k", "sampler": "dns"})
    (in_tmp / "q.hyper").write_text("dns_candidates quniform 8,64,8\n")
    hyper.search("q.hyper", [config], output_file="q.result", algo="random", max_evals=3)
    assert len(seen) == 3
    assert all(isinstance(c["dns_candidates"], int) and 8 <= c["dns_candidates"] <= 64 and
               c["dns_candidates"] % 8 == 0 for c in seen)


def test_exhaustive_refuses_continuous_lines(in_tmp):
    (in_tmp / "u.hyper").write_text("soft_bpr_beta uniform 0.01,0.5\n")
    with pytest.raises(hyper.ConfigError, match="--algo=random"):
        hyper.grid("u.hyper")


def test_cli_refuses_a_key_both_searched_and_fixed(in_tmp, capsys):
    (in_tmp / "dns.hyper").write_text("dns_candidates choice [8,16]\n")
    assert hyper.main(["--params_file", "dns.hyper", "--dns_candidates=8"]) == 2
    assert "dns_candidates" in capsys.readouterr().err
    assert hyper.main(["--params_file", "dns.hyper", "--tool", "ray"]) == 2
