"""Sampler state travels with RecBole checkpoints: saved at the best epoch, restored by resume and by
load_data_and_model; files are unique per run and written atomically."""

import os

import pytest
import torch

from recbole_negs.trainers.checkpoint import load_checkpoint, save_atomically, unique_checkpoint_path
from recbole_negs.quick_start import load_data_and_model

from conftest import build


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """SASRec + GenNi with the curriculum and the beta schedule, two epochs, best model saved."""
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("run"))
    try:
        config, model, train_data, valid_data, _, trainer = build(
            "SASRec", sampler="genni", genni_curriculum=True, genni_alpha_step=0.1, epochs=2, eval_step=1,
            stopping_step=100, genni_beta_schedule=4)
        trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        yield os.path.abspath(trainer.saved_model_file)
    finally:
        os.chdir(here)


def test_checkpoint_round_trip_restores_sampler_state(trained, in_tmp):
    checkpoint = load_checkpoint(trained)
    saved = checkpoint["negs"]["sampler"]
    assert saved["alpha"] != 2.5, "the curriculum moved alpha during training"
    assert saved["beta"] == pytest.approx(0.001 * 10 ** (saved["epoch"] / 4))

    _, reloaded, *_ = load_data_and_model(trained)
    assert (reloaded.sampler.alpha, reloaded.sampler.beta, reloaded.sampler.epoch) == (
        saved["alpha"], saved["beta"], saved["epoch"])
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, checkpoint["state_dict"][name]), name


def test_resume_restores_sampler_state_and_epoch(trained, in_tmp):
    saved = load_checkpoint(trained)
    _, fresh, *_, fresh_trainer = build("SASRec", sampler="genni", genni_curriculum=True, epochs=3,
                                        genni_beta_schedule=4)
    assert fresh.sampler.alpha == 2.5
    fresh_trainer.resume_checkpoint(trained)
    assert fresh_trainer.start_epoch == saved["epoch"] + 1
    assert fresh.sampler.alpha == saved["negs"]["sampler"]["alpha"]


def test_checkpoint_names_are_unique(in_tmp):
    config = {"checkpoint_dir": str(in_tmp / "saved"), "model": "BPR"}
    paths = {unique_checkpoint_path(config) for _ in range(200)}
    assert len(paths) == 200


def test_atomic_save_keeps_the_old_file_when_writing_fails(in_tmp):
    path = str(in_tmp / "model.pth")
    save_atomically({"weights": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomically({"weights": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["weights"], torch.ones(3))
    assert os.listdir(in_tmp) == ["model.pth"], "no temporary file is left behind"
