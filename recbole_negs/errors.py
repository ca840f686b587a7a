"""The plugin's user-facing errors: one clear sentence, no traceback from the command line."""


class ConfigError(ValueError):
    """A config key has a value the plugin cannot use. Raised before any data is loaded or file written."""


class DataError(ValueError):
    """The data cannot serve the configuration: a dataset folder or atomic file that is missing, empty or
    lacks a column (raised before the data is read), a value RecBole cannot read, or a user with no item left to
    sample as a negative (raised right after the dataset is built). Always before training."""


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the message names the epoch and batch."""
