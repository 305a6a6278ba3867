"""Errors by kind: what a retry can fix is retried, what it cannot fails the task at once; and the checks that
refuse bad names and gates before anything is written."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from mlops_provider.core import errors
from mlops_provider.core.registry import check_model_name, check_scored_metrics, validate_thresholds
from mlops_provider.operators.mixins import ResultOperator


class Raising(ResultOperator):
    def __init__(self, *, error: Exception, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def execute(self, context):
        raise self.error


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (errors.ConfigurationError("model_name='x y' is not valid"), False),
        (errors.TrainingDataError("target missing"), False),
        (errors.UnsupportedFormatError("not parquet"), False),
        (errors.DatasetNotFoundError("nothing at s3://b/k"), True),
        (errors.EmptyDatasetError("no rows"), True),
        (errors.ServiceUnreachableError("S3 did not answer"), True),
        (RuntimeError("a bug"), True),  # not the provider's own verdict: Airflow's retry policy decides
    ],
)
def test_only_errors_a_retry_can_fix_spend_retries(error, retried):
    task = Raising(task_id="t", error=error)
    with pytest.raises(type(error)) as raised:  # callers still catch the provider's own class
        task.execute({})
    assert isinstance(raised.value, AirflowFailException) is not retried
    assert str(raised.value) == str(error)


@pytest.mark.parametrize("name", ["churn", "churn_model-v1", "a.b", "7up"])
def test_model_names_that_are_accepted(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", ["churn model/v1", "churn:v1", "churn'; DROP TABLE x;--", "../../etc", "", "-x"])
def test_model_names_that_are_refused_before_anything_is_written(name):
    with pytest.raises(errors.ConfigurationError, match=r"is not a valid registered model name: use letters"):
        check_model_name(name)


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        ({"roc_auc": {"min": -0.5}}, r"roc_auc.*'min'\] = -0.5 is outside the range of roc_auc \[0, 1\], so it passes"),
        ({"roc_auc": {"min": 1.5}}, r"so it rejects every model"),
        ({"rmse": {"max": -1}}, r"rmse.*'max'\] = -1 is outside .* so it rejects every model"),
        ({"r2": {"min": 1.2}}, r"r2.* rejects every model"),
    ],
)
def test_bounds_outside_a_metrics_range_are_refused(thresholds, message):
    with pytest.raises(errors.ConfigurationError, match=message):
        validate_thresholds(thresholds)


def test_gate_metrics_must_be_ones_the_provider_scores():
    check_scored_metrics({"roc_auc": {"min": 0.5}, "rmse": {"max": 3}})  # either task type, when unknown
    with pytest.raises(errors.ConfigurationError, match=r"\['auc'\], which a model is not scored on; use"):
        check_scored_metrics({"auc": {"min": 0.5}})
    with pytest.raises(errors.ConfigurationError, match=r"\['rmse'\], which a classification model is not scored"):
        check_scored_metrics({"rmse": {"max": 3}}, "classification")


def test_a_semicolon_csv_is_named_as_such(tmp_path):
    from mlops_provider.core.datasets import read_dataset

    path = tmp_path / "scores.csv"
    path.write_text("customer_id;tenure_months\n1;12\n2;30\n")
    with pytest.raises(errors.UnsupportedFormatError, match=r"separated by ';', not commas"):
        read_dataset(str(path))
