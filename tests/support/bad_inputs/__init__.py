"""The bad-input catalogue of ``tests/test_bad_inputs.py``: one ``Case`` per bad input, every operator and sensor."""

from support.bad_inputs.model_cases import MODEL_CASES
from support.bad_inputs.monitoring_cases import MONITORING_CASES

CASES = [*MODEL_CASES, *MONITORING_CASES]

OPERATORS = {
    "ValidateDataOperator", "TrainModelOperator", "EvaluateChallengerOperator", "PromoteModelOperator",
    "RollbackModelOperator", "BatchPredictOperator", "SelectPartitionsOperator", "FeastApplyOperator",
    "MaterializeFeaturesOperator", "GetHistoricalFeaturesOperator", "DetectDriftOperator", "DriftEventOperator",
    "ModelAliasSensor", "DriftSensor", "FeatureFreshnessSensor", "EvaluateLivePerformanceOperator",
    "PerformanceSensor", "PerformanceEventOperator",
}  # fmt: skip
# The catalogue itself, checked when the module is collected: every operator and sensor, at least 45 cases.
assert {case.operator for case in CASES} == OPERATORS, OPERATORS ^ {case.operator for case in CASES}
assert len(CASES) >= 45 and len({case.id for case in CASES}) == len(CASES), "case ids must be unique"
