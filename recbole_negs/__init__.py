"""recbole-negs: UFNRec, GenNi, SRNS and PDNS negative sampling for RecBole models."""

import importlib.util

if importlib.util.find_spec("recbole") is None:  # Python 3.12+ installs RecBole apart, without ray (README)
    raise ModuleNotFoundError("recbole-negs needs RecBole 1.2.1: pip install --no-deps recbole==1.2.1 "
                              "(on Python 3.12+; below, pip install recbole==1.2.1)", name="recbole")

from recbole_negs import compat  # noqa: E402

compat.apply()

from recbole_negs.config.configurator import NegsConfig  # noqa: E402
from recbole_negs.errors import ConfigError, DataError, TrainingError  # noqa: E402
from recbole_negs.model import NegsModel  # noqa: E402
from recbole_negs.quick_start import build_training, load_data_and_model, run_recbole_negs  # noqa: E402
from recbole_negs.trainers import NegsTrainer, UFNRecTrainer  # noqa: E402

__version__ = "0.1.0"

__all__ = ["NegsConfig", "NegsModel", "NegsTrainer", "UFNRecTrainer", "ConfigError", "DataError", "TrainingError",
           "build_training", "load_data_and_model", "run_recbole_negs"]
