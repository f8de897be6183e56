"""The registered generator's model code (MLflow "models from code").

MLflow copies this file into each registered generator version and runs it
when the version is loaded; the version's parameters arrive as its
``model_config``. Code rather than a pickled object: nothing is unpickled
from the registry.
"""

from __future__ import annotations

from mlflow.models import set_model

from models.tracking import GeneratorModel

set_model(GeneratorModel())
