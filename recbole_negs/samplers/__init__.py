"""Negative samplers: one class per file, each writing ``sample(targets) -> Negatives``; registered by name in
``recbole_negs.registry.SAMPLERS``."""

from recbole_negs.samplers.base import Negatives, NegativeSampler, SamplingContext, Targets
from recbole_negs.samplers.dns import DynamicNegativeSampler
from recbole_negs.samplers.genni import GenNiSampler
from recbole_negs.samplers.popularity import PopularitySampler
from recbole_negs.samplers.srns import SRNSSampler
from recbole_negs.samplers.uniform import UniformSampler

__all__ = ["Negatives", "NegativeSampler", "SamplingContext", "Targets", "UniformSampler", "PopularitySampler",
           "DynamicNegativeSampler", "GenNiSampler", "SRNSSampler"]
