"""A churn model as a plain predict function, which `sagewatch local --serve-endpoint` serves as a
SageMaker endpoint in the e2e tests (numpy only: it runs inside the api handler, under Lambda's
import limits)."""

from __future__ import annotations

import numpy as np


def predict(rows: np.ndarray) -> np.ndarray:
    """The churn probability of rows (age, income, region), as the endpoint would answer."""
    rows = np.asarray(rows, dtype=object)
    age, income = rows[:, 0].astype(float), rows[:, 1].astype(float)
    north = (rows[:, 2] == "north").astype(float)
    return 1 / (1 + np.exp(-(0.04 * (age - 50) + 0.01 * (income - 1000) + 0.8 * north)))
