"""The study spec: a base experiment, a search space over its dotted keys (or blocks of small grids), and study
settings; validated once (``load_spec``) into a ``Spec`` that builds each configuration's experiment.
Nothing here knows Optuna or MLflow."""

from studies.spec.load import load_spec
from studies.spec.schema import BLOCKS_KEY, Spec, SpecFile, StudySettings, config_key, params_key
from studies.spec.space import SEED_KEY, Dimension, Space

__all__ = ["BLOCKS_KEY", "SEED_KEY", "Dimension", "Space", "Spec", "SpecFile", "StudySettings",
           "config_key", "load_spec", "params_key"]
