"""The registered recommender's model code (MLflow "models from code"):
``predict`` takes rows of ``user_id`` (and optional ``k``) and answers the
top tracks of each from the stored arrays; nothing is unpickled."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from models.recommend.artifact import RecommenderArtifact


class RecommenderModel(PythonModel):  # type: ignore[misc]
    def __init__(self) -> None:
        self.artifact: RecommenderArtifact | None = None

    def load_context(self, context: Any) -> None:
        self.artifact = RecommenderArtifact.load(context.artifacts["recommender"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        a = self.artifact
        assert a is not None, "load the model with mlflow.pyfunc.load_model"
        rows = []
        for rec in model_input.to_dict("records"):
            k = int(rec.get("k") or 10)
            j = a.user_index(str(rec["user_id"]))
            scores = a.popularity.copy() if j is None else a.item_vectors @ a.user_factors[j]
            if j is not None:
                heard, _ = a.history_of(j)
                scores[heard] = -np.inf
            top = np.argsort(-scores)[:k]
            rows.append({"user_id": rec["user_id"], "track_ids": [str(a.item_ids[t]) for t in top]})
        return pd.DataFrame(rows)


set_model(RecommenderModel())
