"""MLflow's entry script for the logged model (models-from-code; no pickle).

``models.tracking`` logs this file as the ``python_model`` of the MLflow
model, with the ``models`` and ``features`` packages as ``code_paths`` and
the model folder written by :meth:`PropensityModel.save` (LightGBM text
boosters, JSON calibrators, spec, baselines, reference) as the artifact
``model_dir``. MLflow executes this file when it loads the model
(``mlflow.pyfunc.load_model``, ``mlflow models serve``); no other module
imports it. Loading reads only those text and JSON files.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.propensity_model import PropensityModel


class PropensityPyfunc(PythonModel):
    """MLflow pyfunc wrapper of :class:`PropensityModel`."""

    def load_context(self, context: Any) -> None:
        """Load the boosters, calibrators and spec from the artifact ``model_dir``."""
        self.model = PropensityModel.load(context.artifacts["model_dir"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """Return ``p_willingness``, ``p_ability``, ``expected_share`` and the reason codes."""
        return self.model.predict(pd.DataFrame(model_input))


mlflow.models.set_model(PropensityPyfunc())
