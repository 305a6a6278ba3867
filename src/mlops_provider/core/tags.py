"""Names of the MLflow tags the provider writes and reads, kept light so operators can import them at parse time."""

REFERENCE_SAMPLE = "mlops.reference_sample_uri"
HOLDOUT = "mlops.holdout_uri"
HOLDOUT_CONTEXT = "mlops.holdout_context_uri"  # the holdout rows' other columns, row for row
TARGET_COLUMN = "mlops.target_column"
TASK_TYPE = "mlops.task_type"
# The columns whose groups training and the gate measure (JSON lists; see core.slicing).
SLICE_COLUMNS = "mlops.slice_columns"
SENSITIVE_COLUMNS = "mlops.sensitive_columns"

# Written by training on the run and on the registered version.
DATASET_URI = "mlops.dataset_uri"
# What training is skipped on when the champion carries the same values (see core.training.differences_from_champion).
DATA_FINGERPRINT = "mlops.data_fingerprint"
ESTIMATOR_SPEC = "mlops.estimator_spec"
TRAINING_CONFIG = "mlops.training_config"
PROVIDER_VERSION = "mlops.provider_version"
# Set, with the reason, on a run an earlier try left RUNNING before it is marked FAILED.
ABANDONED = "mlops.abandoned"

# The Airflow task try behind a run, version, gate decision or alias move (see core.identity.TaskIdentity).
AIRFLOW_DAG_ID = "airflow.dag_id"
AIRFLOW_RUN_ID = "airflow.run_id"
AIRFLOW_TASK_ID = "airflow.task_id"
AIRFLOW_MAP_INDEX = "airflow.map_index"
AIRFLOW_TRY_NUMBER = "airflow.try_number"
# What a retry shares with the try before it: found by these, a task never does its work twice per DAG run.
AIRFLOW_TASK_KEY = (AIRFLOW_DAG_ID, AIRFLOW_RUN_ID, AIRFLOW_TASK_ID, AIRFLOW_MAP_INDEX)

# The gate's decision on a challenger version, and who made it.
GATE_DECISION = "mlops.gate.decision"
GATE_DETAIL = "mlops.gate.detail"
GATE_BY = "mlops.gate.by"
# Registered-model tags: one per alias move (``mlops.history.000001`` ...), and the promotion lock's holder.
HISTORY_PREFIX = "mlops.history."
LOCK_OWNER = "mlops.lock_owner"
LOCK_OF = "mlops.lock_of"
# The ``action`` of a history entry that records a stale promotion lock broken by the next promoter (its
# holder died): no alias moves; the entry names the holder, since when it held the lock and how long.
LOCK_TAKEOVER_ACTION = "lock_takeover"

# Live performance (EvaluateLivePerformanceOperator): the model's monitoring run, and on a shadow version one tag
# per window with its paired evidence against the champion (``mlops.live_evidence.<start>-<end>``).
MONITORING_OF = "mlops.monitoring_of"
LIVE_EVIDENCE_PREFIX = "mlops.live_evidence."
# On the monitoring run: the newest verdict of each monitor as JSON (``mlops.verdict.drift``, ``mlops.verdict.live``).
VERDICT_PREFIX = "mlops.verdict."

# The model card (core.model_card). What a person said about the model, written by training on the run and the
# version (TrainModelOperator's model_owner, model_purpose, known_limits); the data's time span as JSON
# (``{"column", "start", "end"}``); how long labels take to arrive, written by the live evaluation.
OWNER = "mlops.owner"
PURPOSE = "mlops.purpose"
KNOWN_LIMITS = "mlops.known_limits"
DATA_TIME_RANGE = "mlops.data_time_range"
LABEL_DELAY = "mlops.label_delay"
# On the version, per card written: when, the status it reflects, what made it, where it is; and, when a
# regeneration failed after the version's status changed, why the card on file is out of date.
CARD_GENERATED_AT = "mlops.card.generated_at"
CARD_STATUS = "mlops.card.status"
CARD_TRIGGER = "mlops.card.trigger"
CARD_URI = "mlops.card.uri"
CARD_STALE = "mlops.card.stale"

# Online serving and progressive rollout (mlops-serve, operators/rollout.py). The aliases the scoring service
# follows on a registered model, and the registered-model tag that holds the canary's share of requests (a
# decimal in [0, 1], e.g. "0.1"; absent or "0" means no canary traffic).
CHAMPION_ALIAS = "champion"
SHADOW_ALIAS = "shadow"
CANARY_ALIAS = "canary"
CANARY_SHARE = "mlops.rollout.canary_share"
