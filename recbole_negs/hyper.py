"""Hyper-parameter search with RecBole's own ``recbole.trainer.HyperTuning`` (hyperopt), on the plugin's path.

RecBole's ``objective_function`` lives in ``recbole.quick_start``, which imports ray (broken on numpy 2 and
absent on Python 3.12+), and trains without the plugin; this one has its signature and returns its dict, so
``HyperTuning(objective_function, ...)`` searches any plugin key (``dns_candidates``, ``genni_alpha``,
``soft_bpr_beta``, ``ufn_reverse_threshold``, ...) next to RecBole's own.
"""

import ast
import itertools
import logging
import sys

from recbole_negs.errors import ConfigError, DataError, TrainingError

ALGOS = ("exhaustive", "random", "bayes")


def _integral(value):
    """hyperopt's ``quniform`` yields floats (16.0); RecBole's integer keys (embedding_size) and the plugin's
    (dns_candidates) need ints, so a whole float becomes an int."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _fresh_logger():
    """RecBole's init_logger goes through logging.basicConfig, which does nothing once the root logger has
    handlers: without this every trial would log into the first trial's file."""
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
        handler.close()


def objective_function(config_dict=None, config_file_list=None, saved=True):
    """One trial: train and test one configuration, as RecBole's objective_function (same signature, same
    dict: model, best_valid_score, valid_score_bigger, best_valid_result, test_result)."""
    from recbole_negs.config.configurator import NegsConfig
    from recbole_negs.quick_start import run_recbole_negs

    config_dict = {key: _integral(value) for key, value in (config_dict or {}).items()}
    # the model name for the result dict; building the config also rejects a bad value before data loads
    model = NegsConfig(config_dict=config_dict, config_file_list=config_file_list)["model"]
    _fresh_logger()
    result = run_recbole_negs(config_file_list=config_file_list, config_dict=config_dict, saved=saved)
    return {"model": model, **result}


def read_space(params_file):
    """``{key: (type, text)}`` for every line of a RecBole params file (``key type values``; lines with fewer
    than three words are skipped, as RecBole skips them)."""
    space = {}
    with open(params_file) as handle:
        for line in handle:
            words = line.split()
            if len(words) >= 3:
                space[words[0]] = (words[1], "".join(words[2:]))
    return space


def grid(params_file):
    """An exhaustive search as a hyperopt algorithm: trial ``tid`` takes the ``tid``-th combination of the
    ``choice`` lines, in the file's order. RecBole's own ``exhaustive`` draws with a ``RandomState``, which
    hyperopt >= 0.2.7 (the first release that runs on numpy 2) no longer accepts. Returns ``(algo, size)``."""
    space = read_space(params_file)
    others = sorted(key for key, (kind, _) in space.items() if kind != "choice")
    if others:
        raise ConfigError(f"--algo=exhaustive searches 'choice' lines only, and {', '.join(others)} are not; "
                          "use --algo=random or --algo=bayes")
    labels = list(space)
    combos = list(itertools.product(*(range(len(ast.literal_eval(space[k][1]))) for k in labels)))

    def suggest(new_ids, domain, trials, seed):
        from hyperopt.base import miscs_update_idxs_vals

        docs = []
        for tid in new_ids:
            if tid >= len(combos):
                break
            misc = {"tid": tid, "cmd": domain.cmd, "workdir": domain.workdir}
            miscs_update_idxs_vals([misc], {k: [tid] for k in labels},
                                   {k: [index] for k, index in zip(labels, combos[tid])})
            docs.extend(trials.new_trial_docs([tid], [None], [domain.new_result()], [misc]))
        return docs

    return suggest, len(combos)


def search(params_file, config_file_list=None, output_file="hyper_example.result", algo="exhaustive",
           max_evals=100, early_stop=10):
    """Run RecBole's HyperTuning over ``params_file`` (RecBole's format, one ``key type values`` per line, e.g.
    ``dns_candidates choice [8,16]``) and write every trial's results to ``output_file``; returns the tuner."""
    try:
        from recbole.trainer import HyperTuning
        import hyperopt  # noqa: F401
    except ImportError as error:
        raise ConfigError("hyper-parameter search needs hyperopt: pip install 'recbole-negs[hyper]'") from error
    if algo not in ALGOS:
        raise ConfigError(f"--algo = {algo!r} is invalid; allowed: {'|'.join(ALGOS)}")
    if algo == "exhaustive":
        algo, max_evals = grid(params_file)
    tuner = HyperTuning(objective_function, params_file=params_file, fixed_config_file_list=config_file_list,
                        algo=algo, max_evals=max_evals, early_stop=early_stop)
    tuner.run()
    tuner.export_result(output_file=output_file)
    return tuner


def main(argv=None):
    """``run_hyper_negs.py``: RecBole's run_hyper.py options; any other ``--key=value`` is a fixed config
    value for every trial (RecBole's Config reads it from the command line)."""
    import argparse

    parser = argparse.ArgumentParser(prog="run_hyper_negs.py", description=(
        "Hyper-parameter search over recbole-negs and RecBole keys with RecBole's HyperTuning (hyperopt). "
        "Other --key=value arguments are fixed config values for every trial."))
    parser.add_argument("--config_files", default=None, help="space-separated YAML files fixed for every trial")
    parser.add_argument("--params_file", required=True, help="search space in RecBole's format, one line per "
                        "key: 'key choice [a,b]', 'key uniform lo,hi', 'key quniform lo,hi,q', 'key loguniform lo,hi'")
    parser.add_argument("--output_file", default="hyper_example.result", help="every trial's parameters, "
                        "validation and test results (RecBole's format)")
    parser.add_argument("--tool", default="hyperopt", help="hyperopt (RecBole's Ray tool needs ray, which "
                        "RecBole 1.2.1 pins to a version that does not run on numpy 2)")
    parser.add_argument("--algo", default="exhaustive", choices=ALGOS, help="exhaustive: every combination of "
                        "choice values (max_evals ignored); random; bayes (TPE)")
    parser.add_argument("--max_evals", type=int, default=100)
    parser.add_argument("--early_stop", type=int, default=10, help="stop after this many trials without a better "
                        "validation score")
    argv = sys.argv[1:] if argv is None else argv
    args, rest = parser.parse_known_args(argv)
    if args.tool.lower() != "hyperopt":
        print(f"run_hyper_negs.py: error: --tool={args.tool}: only hyperopt is supported (ray is not)",
              file=sys.stderr)
        return 2
    fixed = {arg[2:].split("=", 1)[0] for arg in rest if arg.startswith("--") and "=" in arg}
    clash = sorted(fixed & set(read_space(args.params_file)))
    if clash:  # RecBole's command line outranks config_dict, so the search would silently not vary them
        print(f"run_hyper_negs.py: error: {', '.join(clash)} both searched in {args.params_file} and fixed on the "
              "command line", file=sys.stderr)
        return 2
    files = args.config_files.strip().split(" ") if args.config_files else None
    saved_argv, sys.argv = sys.argv, [sys.argv[0]] + rest  # only the fixed keys reach RecBole's Config
    try:
        tuner = search(args.params_file, files, args.output_file, args.algo, args.max_evals, args.early_stop)
    except (ConfigError, DataError, TrainingError) as error:
        print(f"run_hyper_negs.py: error: {error}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved_argv
    print("best params:", tuner.best_params)
    print("best result:")
    print(tuner.params2result[tuner.params2str(tuner.best_params)])
    print(f"all trials: {args.output_file}")
    return 0
