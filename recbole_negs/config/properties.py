"""Where the plugin's YAML defaults are: inside the installed package, or properties/ in a source checkout."""

import os
import re
from functools import lru_cache

import yaml


class _FloatAwareLoader(yaml.SafeLoader):
    """YAML 1.1 reads '1e-5' as a string; RecBole's loader reads it as a float, and so does this one."""


_FloatAwareLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:(?:\d+\.\d*|\.\d+|\d+)[eE][-+]?\d+|\d+\.\d*|\.\d+)$"),
    list("-+0123456789."),
)


@lru_cache(maxsize=None)
def properties_dir():
    try:
        import recbole_negs.properties as installed

        return list(installed.__path__)[0]  # a folder of YAML files, no __init__.py
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))  # recbole_negs/config
        return os.path.join(os.path.dirname(os.path.dirname(here)), "properties")


def property_file(*parts):
    """Path of properties/<parts...>.yaml (it may not exist: e.g. a method without per-model overrides)."""
    return os.path.join(properties_dir(), *parts[:-1], parts[-1] + ".yaml")


def read_yaml(path):
    with open(path, "r", encoding="utf-8") as f:
        return yaml.load(f, Loader=_FloatAwareLoader) or {}


def all_defaults():
    """Every plugin key's default: overall.yaml and each sampler / loss / trainer file (not the presets)."""
    defaults = dict(read_yaml(property_file("overall")))
    for folder in ("sampler", "loss", "trainer"):
        directory = os.path.join(properties_dir(), folder)
        for name in sorted(os.listdir(directory)):
            if name.endswith(".yaml"):
                for key, value in read_yaml(os.path.join(directory, name)).items():
                    defaults.setdefault(key, value)
    return defaults


def sampler_overrides():
    """{key: {sampler: value}} for overall keys a sampler's file sets otherwise (e.g. genni's loss: bce): the
    effective default of such a key depends on the sampler."""
    overall = read_yaml(property_file("overall"))
    out = {}
    directory = os.path.join(properties_dir(), "sampler")
    for name in sorted(os.listdir(directory)):
        if name.endswith(".yaml"):
            for key, value in read_yaml(os.path.join(directory, name)).items():
                if key in overall and value != overall[key]:
                    out.setdefault(key, {})[name[:-5]] = value
    return out


def method_names():
    """The presets: one YAML file per method under properties/method/."""
    folder = os.path.join(properties_dir(), "method")
    return tuple(sorted(name[:-5] for name in os.listdir(folder) if name.endswith(".yaml")))
