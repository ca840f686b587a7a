"""Every random number generator a training run draws from, captured and restored as one dict, so that a run
resumed from its "last" checkpoint continues exactly as the uninterrupted run would have."""

import random

import numpy as np
import torch


def capture(loader_generator=None):
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def restore(state, loader_generator=None):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])
