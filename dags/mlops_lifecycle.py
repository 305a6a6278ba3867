"""
### mlops_lifecycle

The whole lifecycle on any tabular dataset, triggered by hand or through the REST API:
validate (Great Expectations) -> features (Feast, only with `feature_refs`) -> train (scikit-learn, tracked and
registered in MLflow) -> gate (challenger vs champion on the same holdout) -> optional human approval ->
promote (`<model>@champion`, serialised and audited) -> score.

Every knob is a param of the trigger form. The dataset, target and model default to the sample churn data;
every other default is generic, so a trigger that names only another dataset, its target and a model name
trains, gates and promotes on that dataset. Params reach the tasks as native values (lists stay lists).
"""

from __future__ import annotations

import os

from airflow.sdk import DAG, Param

from mlops_provider.operators.lifecycle import CheckRunConfOperator, LifecycleSettings, lifecycle_task_group
from mlops_provider.reference import START_DATE, reference_settings

settings = reference_settings(os.path.dirname(__file__))

with DAG(
    dag_id="mlops_lifecycle",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    tags=["mlops", "lifecycle"],
    doc_md=__doc__,
    render_template_as_native_obj=True,
    params={
        "dataset_uri": Param(
            settings.data_uri,
            type="string",
            minLength=1,
            description="Labelled data: a parquet/CSV file or folder, local or s3://; "
            "a comma-separated list reads several partitions as one.",
        ),  # fmt: skip
        "target_column": Param(settings.target_column, type="string", minLength=1, description="The label column."),
        "feature_columns": Param(
            None,
            type=["null", "array"],
            items={"type": "string"},
            description="Columns the model uses; empty: every column except the target, "
            "the timestamp and the id columns.",
        ),  # fmt: skip
        "id_columns": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Identifier columns that are never features (partition folders such as dt=... never are).",
        ),  # fmt: skip
        "timestamp_column": Param(
            None,
            type=["null", "string"],
            description="When set, the newest rows are held out for evaluation "
            "(a time split); empty: a seeded random split.",
        ),  # fmt: skip
        "model_name": Param(
            settings.model_name,
            type="string",
            minLength=1,
            pattern=r"^[A-Za-z0-9_.\-]+$",
            description="The registered model in MLflow that receives the new version.",
        ),  # fmt: skip
        "estimator": Param(
            None,
            type=["null", "string"],
            description="Import path of a scikit-learn estimator (e.g. "
            "sklearn.ensemble.RandomForestClassifier) or of a function returning a Pipeline; "
            "empty: HistGradientBoosting for the inferred task type.",
        ),  # fmt: skip
        "estimator_params": Param({}, type="object", description="Keyword arguments for the estimator."),
        "primary_metric": Param(
            None,
            type=["null", "string"],
            enum=[None, "roc_auc", "f1_macro", "accuracy", "log_loss", "rmse", "mae", "r2"],
            description="The metric the gate compares; empty: roc_auc for classification, rmse for regression.",
        ),  # fmt: skip
        "min_improvement": Param(
            settings.min_improvement,
            type="number",
            description="How much the challenger must beat the champion on the primary "
            "metric (absolute; 0 = at least as good). At cold start any model passes.",
        ),  # fmt: skip
        "expectation_suite": Param(
            None,
            type=["null", "string"],
            description="A Great Expectations suite JSON (path or s3://). Empty: the "
            "suite is inferred from the champion's training data (at cold start, "
            "from this dataset, and saved as the baseline).",
        ),  # fmt: skip
        "require_approval": Param(
            False,
            type="boolean",
            description="Wait for a human approval (Airflow's Required actions) between "
            "the gate and the promotion, showing both models' metrics.",
        ),  # fmt: skip
        "slice_columns": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Columns whose groups get their own holdout metrics "
            "(slice.<column>.<value>.<metric>), shown in the model card.",
        ),  # fmt: skip
        "sensitive_columns": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Columns whose groups are compared with fairlearn (demographic "
            "parity, equalized odds, worst group), shown in the model card.",
        ),  # fmt: skip
        "approvers": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Airflow user ids who may answer the approval; empty: anyone "
            "allowed to answer this DAG's Required actions.",
        ),  # fmt: skip
        "feature_refs": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Feast feature references (view:feature) joined point-in-time onto "
            "the dataset's entity rows; empty: Feast is not used.",
        ),  # fmt: skip
    },
) as dag:
    CheckRunConfOperator(task_id="check_conf") >> lifecycle_task_group(
        LifecycleSettings(
            dataset_uri="{{ params.dataset_uri }}",
            target_column="{{ params.target_column }}",
            model_name="{{ params.model_name }}",
            feature_columns="{{ params.feature_columns }}",
            id_columns="{{ params.id_columns }}",
            timestamp_column="{{ params.timestamp_column }}",
            estimator="{{ params.estimator }}",
            estimator_params="{{ params.estimator_params }}",
            slice_columns="{{ params.slice_columns }}",
            sensitive_columns="{{ params.sensitive_columns }}",
            primary_metric="{{ params.primary_metric }}",
            min_improvement="{{ params.min_improvement }}",
            expectation_suite="{{ params.expectation_suite }}",
            feature_refs="{{ params.feature_refs }}",
            require_approval="{{ params.require_approval }}",
            approvers="{{ params.approvers }}",
            feast_repo_path=settings.feast_repo,
            experiment_name="mlops_lifecycle",
        )
    )
