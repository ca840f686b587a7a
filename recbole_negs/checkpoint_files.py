"""Checks on the checkpoint a user names and on the folder checkpoints go to, made before any data is read
(the file can be unpickled, holds a training checkpoint of this model and learner; the folder takes files) and
right after the model is built (the parameters have this model's names and shapes). Without them torch stops
with an unpickling error after the dataset has loaded, or RecBole after the first epoch has trained."""

import os
import uuid

import torch
import yaml

from recbole_negs.errors import ConfigError


def load_checkpoint(path, device="cpu"):
    """Unpickle a checkpoint the run wrote or the user named (never load a checkpoint you do not trust)."""
    return torch.load(str(path), map_location=device, weights_only=False)


# What resume_checkpoint reads; RecBole's own checkpoints have these too.
RESUME_ENTRIES = ("config", "epoch", "cur_step", "best_valid_score", "state_dict", "optimizer")


def _shown(path):
    return f"config key 'checkpoint_file' = '{path}'"


def read_user_checkpoint(path, device="cpu"):
    """A checkpoint the user named, or a ConfigError saying why it cannot be one: random bytes, a truncated
    or text file (torch cannot unpickle it), or a file of something else than a training checkpoint."""
    try:
        checkpoint = load_checkpoint(path, device)
    except Exception as error:  # torch raises UnpicklingError, EOFError, RuntimeError, ... depending on the damage
        reason = (str(error).splitlines() or [""])[0].split(". ")[0][:100] or "no message"
        raise ConfigError(f"{_shown(path)} is not a readable checkpoint ({type(error).__name__}: {reason}); the "
                          "file is damaged, truncated or not written by torch.save: name a .pth file that RecBole "
                          "or recbole-negs saved (saved/*.pth)") from None
    missing = [entry for entry in RESUME_ENTRIES if not isinstance(checkpoint, dict) or entry not in checkpoint]
    if missing:
        held = (f"a dict without {', '.join(repr(m) for m in missing)}" if isinstance(checkpoint, dict)
                else f"a {type(checkpoint).__name__}")
        raise ConfigError(f"{_shown(path)} is not a RecBole training checkpoint (it holds {held}); name a .pth "
                          "file that RecBole or recbole-negs saved (saved/*.pth)")
    return checkpoint


def check_checkpoint_file(config):
    """Before any data is loaded: the named checkpoint can be read and was written for this run's model."""
    path = config["checkpoint_file"]
    if not path:
        return
    checkpoint = read_user_checkpoint(path)
    saved_model = _config_value(checkpoint["config"], "model")
    if saved_model is not None and str(saved_model).lower() != str(config["model"]).lower():
        raise ConfigError(f"{_shown(path)} was written for model '{saved_model}', and this run trains "
                          f"'{config['model']}'; resume with --model={saved_model}, or drop checkpoint_file to "
                          "start afresh")
    saved_learner = _config_value(checkpoint["config"], "learner")
    if saved_learner is not None and str(saved_learner).lower() != str(config["learner"]).lower():
        raise ConfigError(f"{_shown(path)} holds the state of optimizer '{saved_learner}', and this run's learner is "
                          f"'{config['learner']}'; resume with --learner={saved_learner}, or drop checkpoint_file")


def _config_value(saved_config, key):
    try:
        return saved_config[key]
    except (KeyError, TypeError, IndexError):
        return None


def check_fits(path, checkpoint, model, config):
    """The checkpoint's parameters have the names and shapes of the model built for this run; otherwise a
    ConfigError naming the first difference and the settings that differ from the file's (torch would stop with
    a list of missing keys or size mismatches)."""
    expected, saved = model.state_dict(), checkpoint["state_dict"]
    problem = None
    for name, tensor in expected.items():
        if name not in saved:
            problem = f"the file has no '{name}'"
        elif tuple(saved[name].shape) != tuple(tensor.shape):
            problem = (f"'{name}' is {list(saved[name].shape)} in the file and {list(tensor.shape)} in this "
                       "run's model")
        if problem:
            break
    else:
        extra = [name for name in saved if name not in expected]
        if extra:
            problem = f"the file has '{extra[0]}', which this run's model does not"
    if problem is None:
        return
    differing = []
    for key in ["dataset"] + _model_keys(config["model"]):
        theirs = _config_value(checkpoint["config"], key)
        if theirs is not None and theirs != _config_value(config, key):
            differing.append(f"{key}={theirs!r}")
    settings = f" (the file was written with {', '.join(differing[:4])})" if differing else ""
    raise ConfigError(f"{_shown(path)} does not fit the model built for this run: {problem}{settings}; resume "
                      "with the dataset and model settings it was trained with")


def _model_keys(model):
    import recbole

    path = os.path.join(os.path.dirname(recbole.__file__), "properties", "model", f"{model}.yaml")
    if not os.path.isfile(path):
        return []
    with open(path, "r", encoding="utf-8") as f:
        content = yaml.safe_load(f)
    return list(content) if isinstance(content, dict) else []


def check_checkpoint_dir(folder, create=False):
    """``checkpoint_dir`` can take files: a probe file is written and removed. Without ``create`` a folder
    that does not exist yet is not made, only its nearest existing parent is tried (config checks write
    nothing). RecBole would otherwise fail when it saves the first epoch's model, after training it."""
    target = folder
    if create:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"config key 'checkpoint_dir' = '{folder}' cannot be created ({error.strerror}); "
                              "choose a writable folder with --checkpoint_dir=...") from None
    else:
        while not os.path.isdir(target):
            if os.path.exists(target):
                raise ConfigError(f"config key 'checkpoint_dir' = '{folder}' is not a folder ('{target}' is a "
                                  "file); choose a writable folder with --checkpoint_dir=...")
            parent = os.path.dirname(os.path.abspath(target))
            if parent == os.path.abspath(target):
                break
            target = parent
    probe = os.path.join(target, f".recbole-negs-probe-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as error:
        raise ConfigError(f"config key 'checkpoint_dir' = '{folder}' is not writable ({error.strerror}); "
                          "choose a writable folder with --checkpoint_dir=...") from None
