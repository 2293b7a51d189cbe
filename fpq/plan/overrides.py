"""Snakemake's `--config key=value` overrides, typed as YAML would type them and blamed when wrong.

Snakemake parses a top-level value as int, float or bool, but a nested one (`qat='{epochs: 2}'`,
`seeds='[0]'`) with YAML's BaseLoader, which keeps every scalar a string: the schema would then
refuse `'2'` as not an integer and blame the --configfile. Here every string inside such a value is
read again as YAML reads a scalar (`'2'` -> 2, `'0.1'` -> 0.1, `'true'` -> True), and a value the
schema refuses under a key that --config set is blamed on --config. (A string quoted on the command
line to stay a string, `'{name: "007"}'`, cannot be told apart and becomes 7.)
"""
from __future__ import annotations

import yaml


def yaml_scalar(text: str):
    """A string as YAML types a plain scalar; text that would not be a scalar stays as it is.

    >>> [yaml_scalar(s) for s in ("2", "0.1", "true", "w2a4", "null", "a: b", "")]
    [2, 0.1, True, 'w2a4', None, 'a: b', '']
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, (dict, list)) or (value is None and text.strip() not in ("null", "~")) else value


def typed(value):
    """Every string inside a nested --config value retyped (see yaml_scalar); a top-level scalar,
    which Snakemake already typed, stays as it is.

    >>> typed({"epochs": "2", "lr": "0.01"}), typed(["0", "1"]), typed("results/x")
    ({'epochs': 2, 'lr': 0.01}, [0, 1], 'results/x')
    """

    def retype(node):
        if isinstance(node, dict):
            return {k: retype(v) for k, v in node.items()}
        if isinstance(node, list):
            return [retype(v) for v in node]
        return yaml_scalar(node) if isinstance(node, str) else node

    return retype(value) if isinstance(value, (dict, list)) else value


def apply_overrides(config: dict, overrides: dict) -> dict:
    """`config` (Snakemake's, the --config values already merged in as strings) with each override's
    leaves replaced by their typed values, in place; returns the typed overrides."""
    done = {key: typed(value) for key, value in overrides.items()}

    def merge(target: dict, extra: dict):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                merge(target[key], value)
            else:
                target[key] = value

    merge(config, done)
    return done


def overridden(path: list[str], overrides: dict) -> bool:
    """Whether --config set the key at `path` (or a mapping or list above it).

    >>> overridden(["qat", "epochs"], {"qat": {"epochs": 2}}), overridden(["qat", "lr"], {"qat": {"epochs": 2}})
    (True, False)
    >>> overridden(["seeds", "0"], {"seeds": [0]}), overridden(["quant"], {"quant": {"w_bits": 2}})
    (True, True)
    """
    node = overrides
    for key in path:
        if not isinstance(node, dict):
            return True  # a list or a scalar that --config set whole
        if key not in node:
            return False
        node = node[key]
    return True


def describe(overrides: dict) -> str:
    """The --config arguments as a reader would type them.

    >>> describe({"qat": {"epochs": "two"}, "seeds": [0]})
    'snakemake --config qat={epochs: two} seeds=[0]'
    """
    def flow(value) -> str:
        return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("\n...").strip()

    return "snakemake --config " + " ".join(f"{key}={flow(value)}" for key, value in overrides.items())
