"""SRNS (Ding et al., NeurIPS 2020, "Simplify and Robustify Negative Sampling for Implicit Collaborative
Filtering") for general models with user and item tables (BPR/MF, LightGCN, NGCF), as the authors' code makes
section 3 work: a shared base (base.py) and one class per ``srns_mode`` (real.py, synthetic.py).
``SRNSSampler(config, context)`` returns the configured mode's class; docs/srns.md has the choices between
readings."""

from recbole_negs.samplers.srns.base import (CHUNK_FLOATS, WINDOW, SRNSSampler, population_std,
                                             sample_without_replacement)
from recbole_negs.samplers.srns.real import (CATALOG_RATIO, DENSE_TABLE_LIMIT, GATHER_RATIO, LIVE_POOLS,
                                             RealSRNSSampler, first_occurrence)
from recbole_negs.samplers.srns.synthetic import SyntheticSRNSSampler, duplicates, occurrence_rank

__all__ = ["SRNSSampler", "RealSRNSSampler", "SyntheticSRNSSampler", "WINDOW", "CHUNK_FLOATS", "LIVE_POOLS",
           "DENSE_TABLE_LIMIT", "GATHER_RATIO", "CATALOG_RATIO", "population_std", "sample_without_replacement",
           "first_occurrence", "occurrence_rank", "duplicates"]
