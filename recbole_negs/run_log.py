"""The run's log: RecBole's logger with a file of its own per run, and the line that says what trains."""

import uuid
from logging import getLogger
from unittest import mock

import recbole.utils.logger as recbole_logger
from recbole.utils import get_local_time


def init_logger(config):
    """RecBole's init_logger, with a random suffix on the file name: RecBole names the file by model, dataset,
    the second the run started and a hash of the config, so two runs of one config started in the same second
    appended to one file."""
    stamp = f"{get_local_time()}-{uuid.uuid4().hex[:6]}"
    with mock.patch.object(recbole_logger, "get_local_time", lambda: stamp):
        recbole_logger.init_logger(config)


def effective_settings(config):
    """One line: the sampler, loss, K and exclusion this run trains with (a sampler's file may have changed the
    loss or the exclusion from the README's overall defaults)."""
    if config["sampler"] == "none":
        return (f"recbole-negs: sampler=none (RecBole's own training: loss_type={config['loss_type']}, "
                f"train_neg_sample_args={config['train_neg_sample_args']})")
    k = "all items" if config["loss"] == "full_softmax" else config["neg_sample_num"]
    return (f"recbole-negs: sampler={config['sampler']} loss={config['loss']} K={k} "
            f"neg_exclude={config['neg_exclude']} trainer={config['trainer']} method={config['method']}")


def log_start(config):
    """After init_logger: the effective settings once, then every setting the checks found ignored."""
    logger = getLogger()
    logger.info(effective_settings(config))
    for note in getattr(config, "negs_warnings", ()):
        logger.warning(f"recbole-negs: warning: {note}")
