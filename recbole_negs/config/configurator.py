"""RecBole's Config with the plugin's defaults layered in and every plugin key validated up front.

Priority, lowest first (RecBole's order, with the plugin's files inserted above RecBole's own defaults):
RecBole's property files < properties/overall.yaml < the sampler's, loss's and trainer's file < the method preset
(and its per-model file) < the user's config files < config dict < command line.
"""

import os

import torch
from recbole.config import Config
from recbole.utils import ModelType

from recbole_negs import compat, distributed
from recbole_negs.errors import ConfigError
from recbole_negs import registry
from recbole_negs.config.keys import KEYS, LOSSES, METHODS, SAMPLERS, TRAINERS, check_unknown_keys, check_value
from recbole_negs.config.properties import property_file, read_yaml
from recbole_negs.config.user_checks import check_config, check_model_name, read_config_files

NAME_KEYS = {"sampler": SAMPLERS, "loss": LOSSES, "trainer": TRAINERS, "method": METHODS}


def _name(value, key):
    """Sampler, loss, trainer and method names are case-insensitive; anything else is a clear error."""
    if isinstance(value, str) and value.lower() in NAME_KEYS[key]:
        return value.lower()
    if value is None and key in ("sampler", "method"):
        return "none"
    if isinstance(value, str) and key in registry.KINDS:
        registry.load(key, value.lower())  # a renamed spelling gets its own message
    raise ConfigError(f"config key '{key}' = {value!r} is invalid; allowed: {'|'.join(NAME_KEYS[key])}")


class NegsConfig(Config):
    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None):
        compat.apply()
        check_model_name(model)
        config_file_list = read_config_files(config_file_list)[0]
        super().__init__(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
        validate(self)

    # --- layering
    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        for path in self._plugin_property_files(model):
            self._update_internal_config_dict(path)

    def _plugin_property_files(self, model):
        external = self.external_config_dict
        overall = read_yaml(property_file("overall"))
        for key in NAME_KEYS:
            if key in external:
                external[key] = _name(external[key], key)

        method = external.get("method", overall["method"])
        method_files = [property_file("method", method), property_file("method", method, model)]
        preset = {}
        for path in method_files:
            if os.path.isfile(path):
                preset.update(read_yaml(path))

        def chosen(key, *layers):
            for layer in (external, preset) + layers:
                if key in layer:
                    return _name(layer[key], key)
            return _name(overall[key], key)

        sampler = chosen("sampler")
        sampler_defaults = read_yaml(property_file("sampler", sampler))
        loss = chosen("loss", sampler_defaults)
        trainer = chosen("trainer", sampler_defaults)
        files = [property_file("overall"), property_file("sampler", sampler), property_file("loss", loss),
                 property_file("trainer", trainer)] + method_files
        # The chosen names must win over a sampler file's suggestion when the user or preset named them.
        self._chosen_names = {"sampler": sampler, "loss": loss, "trainer": trainer, "method": method}
        return [path for path in files if os.path.isfile(path)]

    def _get_final_config_dict(self):
        final = super()._get_final_config_dict()
        final.update(self._chosen_names)
        return final

    # --- devices: gloo on CPU for multi-process runs (RecBole hard-codes nccl and CUDA)
    def _init_device(self):
        final = self.final_config_dict
        gpu_id = str(final.get("gpu_id", ""))
        if "local_rank" in final and (not torch.cuda.is_available() or gpu_id in ("", "None")):
            final["gpu_id"] = gpu_id
            distributed.init_cpu_process_group(final)
            return
        super()._init_device()

    # --- RecBole's negatives vs the plugin's
    def _set_default_parameters(self):
        final = self.final_config_dict
        neg_args = final.get("train_neg_sample_args")
        user_set_neg_args = "train_neg_sample_args" in self.external_config_dict
        if final["sampler"] != "none":
            if isinstance(neg_args, dict) and neg_args.get("dynamic"):
                raise ConfigError(
                    "config key 'train_neg_sample_args' has dynamic: True (RecBole's DNS, which re-encodes the "
                    f"batch in the data loader) while sampler = '{final['sampler']}' draws the negatives; use "
                    "sampler: dns (with dns_candidates) instead, or sampler: none to keep RecBole's own DNS")
            # The plugin samples and computes the loss itself; RecBole's data loader must not add negatives.
            final["train_neg_sample_args"] = None
        elif final.get("loss_type") == "CE" and final["MODEL_TYPE"] == ModelType.SEQUENTIAL:
            if not user_set_neg_args:
                # RecBole's stock overall.yaml gives every model one uniform negative, which its CE refuses.
                final["train_neg_sample_args"] = None
            elif neg_args is not None:
                raise ConfigError(
                    f"config key 'train_neg_sample_args' = {neg_args!r} conflicts with loss_type = 'CE' under "
                    "sampler = 'none': RecBole's CE scores the full catalog and takes no sampled negatives; "
                    "set train_neg_sample_args: ~ (or loss_type: BPR), or choose a plugin sampler")
        super()._set_default_parameters()


def validate(config):
    """Every plugin key and every combination the plugin cannot serve, before any data is loaded."""
    final = config.final_config_dict
    check_unknown_keys(final)
    for key in KEYS:
        if key.name in final:
            check_value(key.name, final[key.name])
    registry.check_components(config)
    check_config(config)
