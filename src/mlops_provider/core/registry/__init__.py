"""Gated, serialised, audited and reversible alias moves in the MLflow model registry.

MLflow moves an alias atomically but offers no compare-and-set and keeps no alias history. This module adds:

* ``evaluate_gate``: the decision, from the challenger's and the champion's metrics on the same data;
* ``PromotionLock``: a mutex per registered model that holds across processes and machines. It uses the one
  atomic create-if-absent MLflow has: registering a model name that already exists fails. Holding the lock
  means owning the registered model ``<name>.mlops-lock``; releasing it deletes that model. A lock older than
  ``stale_after`` seconds (its holder died) may be broken by the next promoter;
* ``move_alias``: under the lock, checks that the alias still points where the caller read it (the
  compare-and-set MLflow lacks), keeps the old target under ``previous_<alias>`` and appends the move to the
  model's history;
* the history: one registered-model tag per alias move, ``mlops.history.000001`` ... (JSON: from, to, why,
  who, when). Tags are only added, never rewritten, and sequence numbers are taken under the lock.
"""

from mlops_provider.core.registry.gate import (
    DEFAULT_PRIMARY_METRIC,
    METRIC_RANGES,
    SCORED_METRICS,
    GateCheck,
    GateDecision,
    check_scored_metrics,
    evaluate_gate,
    greater_is_better,
    primary_metric_gate,
    validate_thresholds,
)
from mlops_provider.core.registry.history import (
    alias_version,
    append_history,
    find_own_move,
    move_alias,
    read_history,
    utc_now,
)
from mlops_provider.core.registry.lock import LOCK_SUFFIX, PromotionConflictError, PromotionLock
from mlops_provider.core.registry.names import check_model_name
from mlops_provider.core.registry.promotion import PromotionOutcome, promote_version

__all__ = [
    "DEFAULT_PRIMARY_METRIC",
    "METRIC_RANGES",
    "SCORED_METRICS",
    "check_model_name",
    "check_scored_metrics",
    "LOCK_SUFFIX",
    "GateCheck",
    "GateDecision",
    "PromotionConflictError",
    "PromotionLock",
    "PromotionOutcome",
    "alias_version",
    "append_history",
    "evaluate_gate",
    "find_own_move",
    "greater_is_better",
    "move_alias",
    "primary_metric_gate",
    "promote_version",
    "read_history",
    "utc_now",
    "validate_thresholds",
]
