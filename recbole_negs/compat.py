"""Make RecBole 1.2.1 run on the stack pip installs today (numpy 2, scipy >= 1.12, torch >= 2.6).

RecBole has no release after 1.2.1, so the plugin carries the fixes itself. Each patch checks whether the
installed stack needs it and does nothing otherwise; ``apply()`` runs once, on import of ``recbole_negs``.
The torch >= 2.6 ``weights_only`` change is handled where checkpoints are loaded (``checkpoint.py``), not here,
so that only the run's own files are ever unpickled.
"""

import numpy as np
import torch

_applied = False

# numpy removed these aliases (1.24 / 2.0); RecBole's Config and its metrics still use them.
_NUMPY_ALIASES = {
    "float_": "float64",
    "complex_": "complex128",
    "unicode_": "str_",
    "float": "float64",
    "int": "int_",
    "bool": "bool_",
    "object": "object_",
    "str": "str_",
    "long": "int_",
    "complex": "complex128",
    "unicode": "str_",
}


def _numpy_aliases():
    import warnings

    for alias, target in _NUMPY_ALIASES.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            present = alias in np.__dict__
        if not present:
            setattr(np, alias, getattr(np, target))


def _dok_update():
    """LightGCN, NGCF, ... call ``dok_matrix._update``, which scipy 1.12 removed."""
    import scipy.sparse as sp

    if not hasattr(sp.dok_matrix, "_update"):

        def _update(self, data):
            self._dict.update(data)

        sp.dok_matrix._update = _update


def _sequential_models_without_anomaly_detection():
    """Importing RecBole's sequential models runs SINE's module-level ``set_detect_anomaly(True)``.

    Anomaly detection makes every backward pass 1.4x to 1.8x slower. Import the package once here and switch
    it off again, unless the user had switched it on before.
    """
    was_enabled = torch.is_anomaly_enabled()
    import recbole.model.sequential_recommender  # noqa: F401  (the import is the point)

    if not was_enabled and torch.is_anomaly_enabled():
        torch.autograd.set_detect_anomaly(False)


def apply():
    global _applied
    if _applied:
        return
    _numpy_aliases()
    _dok_update()
    _sequential_models_without_anomaly_detection()
    _applied = True
