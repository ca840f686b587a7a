"""The one table of names: every sampler, loss and trainer the plugin has, by the name a config uses.

Configuration reads the names (the key table's allowed values, name checks) without importing any training
code: a class is named by its module path here and imported only when a run asks for it. Adding a sampler is
one file under ``samplers/``, one YAML under ``properties/sampler/`` and one line below.
"""

from importlib import import_module

from recbole_negs.errors import ConfigError

SAMPLERS = {
    "uniform": "recbole_negs.samplers.uniform:UniformSampler",
    "popularity": "recbole_negs.samplers.popularity:PopularitySampler",
    "dns": "recbole_negs.samplers.dns:DynamicNegativeSampler",
    "genni": "recbole_negs.samplers.genni:GenNiSampler",
    "srns": "recbole_negs.samplers.srns:SRNSSampler",
    "in_batch": "recbole_negs.samplers.in_batch:InBatchSampler",
    "mixed": "recbole_negs.samplers.mixed:MixedSampler",
}
LOSSES = {
    "bpr": "recbole_negs.losses:PairLoss",
    "soft_bpr": "recbole_negs.losses:PairLoss",
    "bce": "recbole_negs.losses:PairLoss",
    "sampled_softmax": "recbole_negs.losses:PairLoss",
    "gbce": "recbole_negs.losses:PairLoss",
    "full_softmax": "recbole_negs.losses:FullSoftmaxLoss",
}
TRAINERS = {
    "negs": "recbole_negs.trainers.negs:NegsTrainer",
    "ufnrec": "recbole_negs.trainers.ufnrec.trainer:UFNRecTrainer",
}
# Backbone adapters are chosen by model name (backbones.adapter_class); this names the function that does.
ADAPTERS = "recbole_negs.backbones:adapter_class"
# `sampler: none` keeps RecBole's own training; presets are the files under properties/method/.
NO_SAMPLER = "none"
RENAMED = {("sampler", "catalog"): "loss: full_softmax (the full softmax is a loss, not a sampler)"}

KINDS = {"sampler": SAMPLERS, "loss": LOSSES, "trainer": TRAINERS}


def names(kind):
    """The names a config may use for ``kind`` (sampler names include ``none``)."""
    table = tuple(KINDS[kind])
    return (NO_SAMPLER,) + table if kind == "sampler" else table


def load(kind, name):
    """The class registered as ``name``; an unknown name is a ConfigError naming the allowed ones."""
    table = KINDS[kind]
    if name not in table:
        hint = RENAMED.get((kind, name))
        raise ConfigError(f"config key '{kind}' = {name!r} is " + (f"now spelled {hint}" if hint else "invalid")
                          + f"; allowed: {'|'.join(names(kind))}")
    module, attribute = table[name].split(":")
    return getattr(import_module(module), attribute)


def load_path(path):
    module, attribute = path.split(":")
    return getattr(import_module(module), attribute)


def check_components(config):
    """Combinations the plugin cannot serve, found from the config alone (before any data is loaded)."""
    sampler = config["sampler"]
    if sampler == NO_SAMPLER:
        if config["trainer"] != "negs":
            raise ConfigError(f"config key 'trainer' = '{config['trainer']}' draws its own negatives and needs a "
                              "plugin sampler; with sampler: none allowed: negs")
        return
    sampler_class, loss_class, trainer_class = (load(kind, config[kind]) for kind in ("sampler", "loss", "trainer"))
    recbole_trainer = load_path("recbole.utils:get_trainer")(config["MODEL_TYPE"], config["model"])
    if recbole_trainer is not load_path("recbole.trainer:Trainer"):
        raise ConfigError(
            f"model '{config['model']}' trains with RecBole's {recbole_trainer.__name__}, which the plugin's "
            "samplers do not drive; use sampler: none for it")
    adapter = load_path(ADAPTERS)(config)
    sampler_class.check_config(config)
    loss_class.check_config(config)
    if sampler_class.needs_user_scores and not adapter.has_user_queries:
        raise ConfigError(
            f"config key 'sampler' = '{sampler}' needs a model with user and item tables scored by a dot product "
            f"(BPR, LightGCN, NGCF), to score every user's items at each epoch end; model "
            f"'{config['model']}' is served through its {adapter.family}")
    trainer_class.check_config(config)
