"""run_recbole_negs and load_data_and_model: RecBole's quick start, on the plugin's training path.

``recbole.quick_start`` is never imported: it imports ray 2.6.3, which does not work with numpy 2.
"""

import sys
from logging import getLogger

import torch

from recbole.data import data_preparation
from recbole.utils import get_model, init_seed, set_color

from recbole_negs import compat, distributed
from recbole_negs.atomic_files import create_dataset
from recbole_negs.run_log import init_logger, log_start
from recbole_negs.trainers.checkpoint import load_checkpoint
from recbole_negs import registry
from recbole_negs.config.configurator import NegsConfig
from recbole_negs.errors import DataError
from recbole_negs.history import UserHistory
from recbole_negs.eval_negatives import use_training_items_negatives
from recbole_negs.model import NegsModel
from recbole_negs.samplers.base import SamplingContext
from recbole_negs.sequence_rows import SequenceRowsDataLoader
from recbole_negs.trainers import trainer_class

compat.apply()


def seed_run(config, offset=0):
    """RecBole's init_seed, plus deterministic torch kernels when ``reproducibility`` is on: on CPU the
    accumulating index kernels (embedding and gather backward) otherwise add in thread order, and two runs
    with one seed drift apart by float rounding after an epoch."""
    init_seed(config["seed"] + offset, config["reproducibility"])
    torch.use_deterministic_algorithms(bool(config["reproducibility"]), warn_only=True)


def build_training(config, model, train_data):
    """Wrap a RecBole model in the plugin's training path and check the data against the config.

    Returns ``(model, train_data, trainer)``: with ``sampler: none`` the model is RecBole's, untouched;
    otherwise a ``NegsModel``, and for sequential models in all-position mode the training loader yields
    one row per user sequence. Raises DataError before training when the data cannot serve the config.
    """
    train_dataset = train_data._dataset
    if config["sampler"] != "none":
        context = SamplingContext.from_training_split(train_dataset, config["device"])
        sampler = registry.load("sampler", config["sampler"]).for_config(config)(config, context)
        loss = registry.load("loss", config["loss"])(config, context.n_items - 1)
        if not loss.whole_catalog:  # the full softmax draws nothing, so no user can run out of items
            sampler.check_data()
        model = NegsModel(model, config, sampler, loss)
        shift = model.backbone.all_position_shift
        if shift is not None:
            train_data = SequenceRowsDataLoader(config, train_dataset, shift, shuffle=config["shuffle"])
    trainer = trainer_class(config)(config, model)
    if config["sampler"] != registry.NO_SAMPLER:
        trainer.attach_data(train_dataset)
    return model, train_data, trainer


def _plain(result):
    return None if result is None else {key: float(value) for key, value in result.items()}


def prepare_run(config):
    """Dataset, splits, RecBole model and the plugin's training path for a config, seeded as RecBole seeds
    them: ``(dataset, model, train_data, valid_data, test_data, trainer)``."""
    seed_run(config)
    dataset = create_dataset(config)
    getLogger().info(dataset)
    try:
        train_data, valid_data, test_data = data_preparation(config, dataset)
    except ValueError as error:
        if "interacted with all items" not in str(error):
            raise
        raise DataError(
            "some users have interacted with every item, and RecBole's own sampler (which it builds for every "
            "split) refuses such a dataset before training; filter those users, e.g. with "
            "user_inter_num_interval: \"[0,N)\" where N is the number of items") from None
    use_training_items_negatives(config, train_data._dataset, valid_data, test_data)
    seed_run(config, config["local_rank"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model, train_data, trainer = build_training(config, model, train_data)
    if hasattr(trainer, "attach_held_out"):  # UFNRec counts reversed negatives that are held-out positives
        trainer.attach_held_out(held_out_items(dataset, train_data._dataset, config["device"]))
    return dataset, model, train_data, valid_data, test_data, trainer


def held_out_items(dataset, train_dataset, device):
    """A UserHistory of every user's interactions outside the training split (validation and test)."""
    full = dataset.inter_matrix(form="csr").astype(bool)
    train = train_dataset.inter_matrix(form="csr").astype(bool)
    return UserHistory.from_matrix((full > train).tocoo(), device)


def run_recbole_negs(model=None, dataset=None, config_file_list=None, config_dict=None, saved=True, queue=None,
                     nproc=1, world_size=-1, ip="localhost", port="5678", group_offset=0):
    """Train and test one configuration; returns the same dict as RecBole's ``run_recbole`` (plain floats).
    With ``nproc > 1`` it starts that many processes on RecBole's distributed path (gloo on CPU, nccl on
    GPUs) and returns rank 0's result; under torchrun this process is one of torchrun's."""
    torchrun_dict = distributed.under_torchrun(config_dict, model, nproc)
    if torchrun_dict is not None:
        config_dict = torchrun_dict
    elif nproc > 1 or world_size > 0:
        import torch.multiprocessing as mp

        config_dict = {**(config_dict or {}), "world_size": world_size if world_size > 0 else nproc, "ip": ip,
                       "port": str(port), "nproc": nproc, "offset": group_offset}
        distributed.prepare_folders(config_dict, model)
        results = mp.get_context("spawn").SimpleQueue()
        distributed.spawn(_process, nproc, (model, dataset, config_file_list, config_dict, saved, results))
        return None if results.empty() else results.get()
    config = NegsConfig(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)
    init_logger(config)
    log_start(config)
    logger = getLogger()
    logger.info(sys.argv)
    logger.info(config)
    dataset, model, train_data, valid_data, test_data, trainer = prepare_run(config)
    logger.info(model)
    if config["checkpoint_file"]:
        trainer.resume_checkpoint(config["checkpoint_file"])

    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"])
    test_result = trainer.evaluate(test_data, load_best_model=saved, show_progress=config["show_progress"])

    logger.info(set_color("best valid ", "yellow") + f": {best_valid_result}")
    logger.info(set_color("test result", "yellow") + f": {test_result}")
    if config["plot"] and distributed.is_main_process():
        from recbole_negs.run_plots import plot_run

        logger.info(set_color("plot", "yellow") + f": {plot_run(config, trainer)}")
    result = {
        "best_valid_score": float(best_valid_score),
        "valid_score_bigger": bool(config["valid_metric_bigger"]),
        "best_valid_result": _plain(best_valid_result),
        "test_result": _plain(test_result),
    }
    if config["local_rank"] == 0 and queue is not None:
        queue.put(result)
    return result


def _process(rank, model, dataset, config_file_list, config_dict, saved, results):
    run_recbole_negs(model, dataset, config_file_list, {**config_dict, "local_rank": rank}, saved, results)


def load_data_and_model(model_file):
    """Reload a checkpoint written by the plugin (or by RecBole) for inference.

    Returns ``(config, model, dataset, train_data, valid_data, test_data)`` as RecBole's function does; with a
    plugin sampler ``model`` is the ``NegsModel`` whose sampler carries the saved state (``model.model`` is
    the RecBole model). Only load checkpoints you trust: they are unpickled.
    """
    checkpoint = load_checkpoint(model_file)
    config = checkpoint["config"]
    init_logger(config)
    dataset, model, train_data, valid_data, test_data, trainer = prepare_run(config)
    trainer.restore_extras(checkpoint.get("negs", {}))
    # last: the checkpoint's model is the evaluated one (UFNRec's teacher), which restore_extras does not load
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    model.eval()
    return config, model, dataset, train_data, valid_data, test_data
