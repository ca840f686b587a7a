"""Checks on what a RecBole user hands the plugin beyond its own keys: the command line, the model name, the
config files, and keys whose effect another setting cancels. Each mistake becomes one ``ConfigError`` line
before any data is loaded; a setting that is ignored becomes one warning in the run's log."""

import difflib
import glob
import importlib.util
import os
import re
from functools import lru_cache

import yaml

from recbole_negs.config.keys import KEY_BY_NAME, KEYS
from recbole_negs.errors import ConfigError

# The command line's own options (cli.py); RecBole's run script reads the same names.
CLI_OPTIONS = ("model", "dataset", "config_files", "nproc", "ip", "port", "world_size", "group_offset")
# Keys RecBole 1.2.1 reads in its code without a default in any of its YAML files (found by scanning its source
# for config["..."]; tests/test_user_errors.py re-scans so that a new RecBole cannot drift from this list).
RECBOLE_KEYS_WITHOUT_DEFAULT = (
    "config_file", "dataset", "model", "device", "local_rank", "world_size", "single_spec", "offset", "nproc",
    "ip", "port", "MODEL_INPUT_TYPE", "MODEL_TYPE", "eval_type", "valid_neg_sample_args", "test_neg_sample_args",
    "encoding", "cin", "contrast", "eta", "feature_num", "has_residual", "norm", "sim", "tail_ratio",
    "token_num_threshold", "use_filter", "xgb_early_stopping_rounds", "CROP_ITEM_SEQ", "CROP_ITEM_SEQ_LEN",
    "INVERSE_ITEM_SEQ", "MASK_INDEX", "MASK_ITEM_SEQ", "NEG_ITEMS", "POS_ITEMS", "REORDER_ITEM_SEQ", "full", "q",
    "alpha", "beta", "shrink",
)
# The model packages RecBole's get_model searches, without exlib_recommender (its import needs lightgbm and
# xgboost, which most users do not have: RecBole then dies with ModuleNotFoundError for any unknown name).
MODEL_PACKAGES = ("general_recommender", "context_aware_recommender", "sequential_recommender",
                  "knowledge_aware_recommender")
KEY_TABLE = "the key table is in the README; RecBole's keys are in its properties/overall.yaml and model YAML files"


def _recbole_dir():
    import recbole

    return os.path.dirname(os.path.abspath(recbole.__file__))


@lru_cache(maxsize=None)
def known_keys():
    """Every key RecBole or the plugin reads: RecBole's property files (overall, model, dataset), its argument
    lists, the keys its code reads without a default, the plugin's key table and property files."""
    from recbole.utils import argument_list

    from recbole_negs.config.properties import properties_dir

    names = set(CLI_OPTIONS) | set(RECBOLE_KEYS_WITHOUT_DEFAULT) | set(KEY_BY_NAME)
    for group in ("general_arguments", "training_arguments", "evaluation_arguments", "dataset_arguments"):
        names |= set(getattr(argument_list, group, ()))
    files = glob.glob(os.path.join(_recbole_dir(), "properties", "**", "*.yaml"), recursive=True)
    files += glob.glob(os.path.join(properties_dir(), "**", "*.yaml"), recursive=True)
    for path in files:
        if os.path.basename(path) in ("url.yaml", "kg_url.yaml"):  # dataset names, not keys
            continue
        with open(path, "r", encoding="utf-8") as f:
            content = yaml.safe_load(f)
        if isinstance(content, dict):
            names |= {str(name) for name in content}
    return frozenset(names)


def _did_you_mean(name, candidates, prefix=""):
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.7)
    if not close:
        return ""
    return "; did you mean " + " or ".join(f"'{prefix}{c}'" for c in close) + "?"


# --- the command line

def split_command_line(argv, option_names):
    """``(options, pairs)``: the command line's own options (``--model X`` or ``--model=X``) and every other
    ``--key=value``. RecBole reads only ``--key=value`` and drops anything else with a warning hidden in the log,
    and it raises a SyntaxError for a key given twice; both are refused here with the token named."""
    options, pairs, seen = {}, [], {}
    tokens = list(argv)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in ("-h", "--help"):
            continue
        if not token.startswith("--"):
            short = {"-m": "model", "-d": "dataset"}.get(token.split("=", 1)[0])
            if short is None:
                raise ConfigError(f"command-line argument '{token}' is not a --key=value pair; write every "
                                  "setting as --key=value (e.g. --epochs=5)")
            token = f"--{short}" + (token[2:] if "=" in token else "")
        name, has_value, value = token[2:].partition("=")
        if not has_value:
            if name in option_names and i < len(tokens) and not tokens[i].startswith("-"):
                value = tokens[i]
                i += 1
            else:
                following = f" {tokens[i]}" if i < len(tokens) and not tokens[i].startswith("--") else ""
                raise ConfigError(f"command-line argument '--{name}{following}' has no '='; RecBole reads only "
                                  f"--key=value, so write --{name}=" + (following.strip() or "VALUE"))
        if "=" in value:
            raise ConfigError(f"command-line argument '--{name}={value}' has a second '=', which RecBole cannot "
                              "read (it splits on '='); put such a value in a --config_files YAML file")
        if name in seen and seen[name] != value:
            raise ConfigError(f"command-line key '--{name}' is given twice, as '{seen[name]}' and '{value}'; "
                              "keep one of them")
        seen[name] = value
        if name in option_names:
            options[name] = value
        elif (name, value) not in pairs:
            pairs.append((name, value))
    return options, pairs


def check_command_line_keys(pairs):
    """A misspelt key on the command line (``--samplr=dns``, ``--epoch=1``) is otherwise ignored without a word:
    RecBole stores any key, and the run trains with the default."""
    known = known_keys()
    for name, _ in pairs:
        if name in known:
            continue
        hint = _did_you_mean(name, known, "--")
        raise ConfigError(f"command-line key '--{name}' is not a RecBole or recbole-negs key{hint} ({KEY_TABLE})")


def check_nproc(nproc):
    if nproc < 1:
        raise ConfigError(f"command-line key '--nproc' = {nproc} is invalid; allowed: int >= 1 (1 = one process)")


# --- the model name

def check_model_name(model):
    """The name RecBole's get_model will look for, checked without importing lightgbm-dependent modules; an
    unknown name lists the closest RecBole model names."""
    if not isinstance(model, str):
        return  # a model class: RecBole takes its name from the class
    module_name = model.lower()
    for package in MODEL_PACKAGES:
        if importlib.util.find_spec(f"recbole.model.{package}.{module_name}") is None:
            continue
        module = importlib.import_module(f"recbole.model.{package}.{module_name}")
        if hasattr(module, model):
            return
        spelled = [name for name in dir(module) if name.lower() == module_name]
        hint = f"; did you mean '{spelled[0]}'? (model names are case-sensitive)" if spelled else ""
        raise ConfigError(f"model '{model}' is not a RecBole model name{hint}")
    if os.path.isfile(os.path.join(_recbole_dir(), "model", "exlib_recommender", module_name + ".py")):
        needs = {"lightgbm": "lightgbm", "xgboost": "xgboost"}.get(module_name, module_name)
        if importlib.util.find_spec(needs) is None:
            raise ConfigError(f"model '{model}' needs the '{needs}' package, which is not installed; "
                              f"pip install {needs}")
        return
    names = model_names()
    close = difflib.get_close_matches(model.lower(), [n.lower() for n in names], n=3, cutoff=0.6)
    by_lower = {n.lower(): n for n in names}
    hint = ("; did you mean " + " or ".join(f"'{by_lower[c]}'" for c in close) + "?") if close else ""
    raise ConfigError(f"model '{model}' is not a RecBole model{hint} (RecBole's models: "
                      "recbole/model/general_recommender, sequential_recommender, context_aware_recommender, "
                      "knowledge_aware_recommender)")


def model_names():
    """Class names of RecBole's models, read from its model files (no import, no lightgbm)."""
    names = []
    for package in MODEL_PACKAGES:
        for path in sorted(glob.glob(os.path.join(_recbole_dir(), "model", package, "*.py"))):
            stem = os.path.basename(path)[:-3]
            if stem == "__init__":
                continue
            with open(path, "r", encoding="utf-8") as f:
                found = re.findall(r"^class (\w+)\(", f.read(), flags=re.M)
            names += [name for name in found if name.lower() == stem]
    return names


# --- config files

def _yaml_loader():
    """RecBole's loader: FullLoader with its float resolver (so a file checked here reads as RecBole reads it)."""
    from recbole.config import Config

    return Config._build_yaml_loader(None)


def read_config_files(files):
    """``(files, merged)``: the files RecBole should read (empty ones dropped: RecBole's dict.update(None) fails
    on them) and their keys merged, later files winning. A missing, unreadable or malformed file, or one that
    is not a mapping of keys, is a ConfigError naming the file."""
    kept, merged = [], {}
    loader = _yaml_loader()
    for path in files or []:
        shown = f"config file '{path}'"
        if not os.path.exists(path):
            raise ConfigError(f"{shown} (from --config_files / config_file_list) does not exist (looked in "
                              f"'{os.getcwd()}'); give an existing YAML file, separate several with spaces")
        if os.path.isdir(path):
            raise ConfigError(f"{shown} is a folder; name a YAML file")
        try:
            with open(path, "r", encoding="utf-8") as f:
                content = yaml.load(f.read(), Loader=loader)
        except UnicodeDecodeError:
            raise ConfigError(f"{shown} is not UTF-8 text; it must be a YAML file of 'key: value' lines") from None
        except OSError as error:
            raise ConfigError(f"{shown} cannot be read ({error.strerror})") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{shown} is not valid YAML: {_yaml_problem(error)}; fix that line") from None
        if content is None:
            continue
        if not isinstance(content, dict):
            raise ConfigError(f"{shown} holds a {type(content).__name__}, not 'key: value' lines; RecBole needs a "
                              "mapping at the top level")
        kept.append(path)
        merged.update(content)
    return kept, merged


def _yaml_problem(error):
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None:
        where += f" ({context} at line {context_mark.line + 1})"
    return f"{problem}{where}"


# --- keys that other settings cancel

def _user_keys(config):
    return set(config.external_config_dict)


def _group_active(group, config):
    kind, _, name = group.partition(": ")
    if kind in ("sampler", "loss", "trainer"):
        return config[kind] == name
    return True


SAMPLING_KEYS = ("neg_sample_num", "neg_exclude", "neg_share", "neg_sample_replacement", "loss", "trainer",
                 "seq_train_mode", "seq_batch_size_unit", "seq_long_policy")


def cancelled_settings(config):
    """``(errors, warnings)``: settings the user wrote that this configuration does not use."""
    user = _user_keys(config)
    sampler, notes, errors = config["sampler"], [], []
    if config["trainer"] == "ufnrec" and "loss" in user and config["loss"] != "bce":
        errors.append(f"config key 'loss' = '{config['loss']}' is not used by trainer 'ufnrec', which trains "
                      "UFNRec's BCE (its reversed labels are BCE targets); drop loss, or use trainer: negs")
    if sampler == "none":
        ignored = [key for key in SAMPLING_KEYS if key in user and key != "trainer"]
        ignored += [key.name for key in KEYS if key.name in user and key.group.split(":")[0] in ("sampler", "loss")]
        if ignored:
            notes.append(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored with sampler: none, "
                         "which keeps RecBole's own training (its loss_type and train_neg_sample_args); choose a "
                         "plugin sampler to use them")
    else:
        for key in KEYS:
            if key.name in user and not _group_active(key.group, config):
                kind, _, owner = key.group.partition(": ")
                notes.append(f"{key.name} is ignored: it belongs to {kind} '{owner}', and {kind} is "
                             f"'{config[kind]}'")
        if config["loss"] == "full_softmax":
            ignored = [key for key in ("neg_sample_num", "neg_exclude", "neg_sample_replacement") if key in user]
            if ignored:
                notes.append(f"{', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} ignored with loss: "
                             "full_softmax, which draws no negatives and trains against every item")
        if "loss_type" in user:
            notes.append(f"RecBole's loss_type = '{config['loss_type']}' is not used: sampler '{sampler}' trains "
                         f"loss '{config['loss']}' (loss: key); set sampler: none to train RecBole's loss_type")
        neg_args = config.external_config_dict.get("train_neg_sample_args")
        if isinstance(neg_args, dict) and not neg_args.get("dynamic"):
            distribution = neg_args.get("distribution", "uniform")
            k = neg_args.get("sample_num", 1)
            same = "sampler: popularity" if distribution == "popularity" else "sampler: uniform"
            notes.append(f"RecBole's train_neg_sample_args = {neg_args} is not used: sampler '{sampler}' draws "
                         f"neg_sample_num = {config['neg_sample_num']} negatives per positive; for the same "
                         f"negatives write {same} and neg_sample_num: {k}, or sampler: none to keep RecBole's")
    return errors, notes


def check_settings(config):
    """Refuse what cannot work and keep the warnings for the run's log (``config.negs_warnings``)."""
    errors, notes = cancelled_settings(config)
    if errors:
        raise ConfigError(errors[0])
    config.negs_warnings = notes


def check_config(config):
    """The checks on a built config beyond the key table, in the order a user would fix them: ignored or
    contradictory settings, the dataset's files, the checkpoint to resume, the folder checkpoints go to."""
    from recbole_negs.atomic_files import check_dataset_files
    from recbole_negs.checkpoint_files import check_checkpoint_dir, check_checkpoint_file

    check_settings(config)
    check_dataset_files(config)
    check_checkpoint_file(config)
    check_checkpoint_dir(config["checkpoint_dir"])
