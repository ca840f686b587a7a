"""recbole-negs: UFNRec, GenNi, SRNS and PDNS negative sampling for RecBole models."""

from recbole_negs import compat

compat.apply()

from recbole_negs.config.configurator import NegsConfig  # noqa: E402
from recbole_negs.errors import ConfigError, DataError, TrainingError  # noqa: E402
from recbole_negs.model import NegsModel  # noqa: E402
from recbole_negs.quick_start import build_training, load_data_and_model, run_recbole_negs  # noqa: E402
from recbole_negs.trainers import NegsTrainer, UFNRecTrainer  # noqa: E402

__version__ = "0.1.0"

__all__ = ["NegsConfig", "NegsModel", "NegsTrainer", "UFNRecTrainer", "ConfigError", "DataError", "TrainingError",
           "build_training", "load_data_and_model", "run_recbole_negs"]
