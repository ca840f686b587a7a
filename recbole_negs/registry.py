"""Names to classes (samplers, trainers) and the checks of what can be combined with what."""

from recbole.trainer import Trainer
from recbole.utils import get_trainer

from recbole_negs.backbones import Backbone, adapter_class
from recbole_negs.trainers.checkpoint import CheckpointMixin
from recbole_negs.errors import ConfigError
from recbole_negs.samplers import SAMPLER_CLASSES
from recbole_negs.trainers import TRAINER_CLASSES


def check_components(config):
    """Combinations the plugin cannot serve, found from the config alone (before any data is loaded)."""
    sampler = config["sampler"]
    if sampler == "none":
        if config["trainer"] != "negs":
            raise ConfigError(f"config key 'trainer' = '{config['trainer']}' draws its own negatives and needs a "
                              "plugin sampler; with sampler: none allowed: negs")
        return
    if sampler not in SAMPLER_CLASSES:
        raise ConfigError(f"config key 'sampler' = '{sampler}' is not available yet; allowed: none|"
                          + "|".join(SAMPLER_CLASSES))
    if config["trainer"] not in TRAINER_CLASSES:
        raise ConfigError(f"config key 'trainer' = '{config['trainer']}' is not available yet; allowed: "
                          + "|".join(TRAINER_CLASSES))
    recbole_trainer = get_trainer(config["MODEL_TYPE"], config["model"])
    if recbole_trainer is not Trainer:
        raise ConfigError(
            f"model '{config['model']}' trains with RecBole's {recbole_trainer.__name__}, which the plugin's "
            "samplers do not drive; use sampler: none for it")
    adapter = adapter_class(config)
    sampler_class = SAMPLER_CLASSES[sampler]
    sampler_class.check_config(config)
    if sampler_class.needs_user_scores and adapter.user_scorer is Backbone.user_scorer:
        raise ConfigError(
            f"config key 'sampler' = '{sampler}' needs a model with user and item tables scored by a dot product "
            f"(BPR, LightGCN, NGCF), to score every user's items at each epoch end; model "
            f"'{config['model']}' is served through its {adapter.family}")
    TRAINER_CLASSES[config["trainer"]].check_config(config)


def trainer_class(config):
    """The trainer for a run: the plugin's for plugin samplers; for sampler: none RecBole's own trainer for the
    model, with the plugin's checkpoint handling (torch >= 2.6 loads, unique names, atomic writes)."""
    if config["sampler"] != "none":
        return TRAINER_CLASSES[config["trainer"]]
    recbole_trainer = get_trainer(config["MODEL_TYPE"], config["model"])
    if recbole_trainer is Trainer:
        return TRAINER_CLASSES["negs"]
    return type(f"Negs{recbole_trainer.__name__}", (CheckpointMixin, recbole_trainer), {})
