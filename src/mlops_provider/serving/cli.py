"""``mlops-serve``: the command line of the scoring service.

Checked before the server binds its port, each with the fix in the message and exit status 2: the tracking URI,
the log root, that the registered model exists and that it has a ``champion`` alias. A registry that stops
answering later is not fatal: the loaded models keep serving and the follower tries again.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from datetime import datetime, timezone

log = logging.getLogger("mlops_provider.serving")

OFF = ("off", "false", "none", "no", "0")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlops-serve",
        description="Online scoring of one registered MLflow model: answers from the champion alias, a canary "
        "share, shadow scoring, a durable prediction log.",
    )
    p.add_argument("--model-name", required=True, help="the registered model to serve")
    p.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking (and registry) URI; default $MLFLOW_TRACKING_URI"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument(
        "--id-columns",
        default="",
        help="comma-separated columns that identify a row (the ones labels will carry); required in every request "
        "while the prediction log is on",
    )
    p.add_argument(
        "--prediction-log-uri",
        default=None,
        help="root of the prediction log (local folder or s3://bucket/prefix); default $MLOPS_HOME/prediction_log; "
        '"off" turns it off',
    )
    p.add_argument("--refresh-seconds", type=float, default=5.0, help="how often the aliases are read again")
    p.add_argument(
        "--journal-dir", default=None, help="where the journal segments go; default $MLOPS_HOME/serving_journal/<model>"
    )
    p.add_argument("--log-rotate-rows", type=int, default=50_000, help="rows per journal segment at most")
    p.add_argument(
        "--log-rotate-seconds", type=float, default=60.0, help="seconds a journal segment stays open at most"
    )
    p.add_argument("--shadow-queue", type=int, default=2048, help="requests waiting for shadow scoring at most")
    p.add_argument(
        "--max-batch-rows", type=int, default=256, help="rows scored together at most (requests pending meanwhile)"
    )
    p.add_argument("--log-level", default="info")
    return p


def build_config(args: argparse.Namespace):
    """The service configuration from the arguments; ``SystemExit`` with the fix for what cannot work."""
    from mlops_provider.core.errors import MlopsError
    from mlops_provider.core.performance.log import LOG_COLUMNS, log_root
    from mlops_provider.core.reports import path_segment
    from mlops_provider.core.tracking import mlops_home
    from mlops_provider.serving.app import ServeConfig

    tracking_uri = (args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or "").strip()
    if not tracking_uri:
        fail("No MLflow tracking URI: pass --tracking-uri http://mlflow:5000 (or set MLFLOW_TRACKING_URI).")
    model_name = args.model_name.strip()
    if not model_name:
        fail("--model-name is empty; give the registered model to serve.")
    id_columns = tuple(dict.fromkeys(c.strip() for c in args.id_columns.split(",") if c.strip()))
    setting = args.prediction_log_uri
    root = None
    if setting is None or setting.strip().lower() not in OFF:
        try:
            root = log_root(setting)
        except MlopsError as error:
            fail(f"--prediction-log-uri: {error}")
        if not id_columns:
            fail(
                "The prediction log is on but --id-columns is empty: name the columns that identify a row (the ones "
                "labels will carry), e.g. --id-columns customer_id, or pass --prediction-log-uri off."
            )
        clashing = [c for c in id_columns if c in LOG_COLUMNS or c.startswith("probability_")]
        if clashing:
            fail(
                f"--id-columns {clashing} clash with the prediction log's own columns {list(LOG_COLUMNS)}; use others."
            )
    for name, value in (("--refresh-seconds", args.refresh_seconds), ("--log-rotate-seconds", args.log_rotate_seconds)):
        if not value > 0:
            fail(f"{name}={value} must be a positive number of seconds.")
    if args.log_rotate_rows < 1 or args.shadow_queue < 1 or args.max_batch_rows < 1:
        fail("--log-rotate-rows, --shadow-queue and --max-batch-rows must be at least 1.")
    journal_dir = args.journal_dir or str(mlops_home() / "serving_journal" / path_segment(model_name))
    started = datetime.now(timezone.utc)
    return ServeConfig(
        model_name=model_name,
        tracking_uri=tracking_uri,
        instance_id=f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        journal_dir=journal_dir,
        id_columns=id_columns,
        log_root=root,
        refresh_seconds=args.refresh_seconds,
        rotate_rows=args.log_rotate_rows,
        rotate_seconds=args.log_rotate_seconds,
        shadow_queue=args.shadow_queue,
        max_batch_rows=args.max_batch_rows,
    )


def fail(message: str) -> None:
    print(f"mlops-serve: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    config = build_config(args)
    import warnings

    # scikit-learn warns from every thread but the main one (the shadow worker, /refresh) that its config does not
    # reach joblib workers; a Pipeline scored sequentially has none, and the warning would fill the log.
    warnings.filterwarnings("ignore", message=".*sklearn.utils.parallel.delayed.*", category=UserWarning)
    # A service re-reads the registry every few seconds: fail a read fast and try again at the next refresh,
    # instead of MLflow's default of minutes of retries (unless the operator chose otherwise).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    os.environ["MLFLOW_TRACKING_URI"] = config.tracking_uri  # models:/ URIs resolve against it

    from mlops_provider.core.errors import MlopsError
    from mlops_provider.serving.app import Service, create_app

    service = Service(config)
    try:
        state = service.follower.check_champion()
    except MlopsError as error:
        fail(str(error))
    log.info(
        "Serving %s from %s: champion version %s, canary %s (share %s), shadow %s; prediction log %s",
        config.model_name, config.tracking_uri, state.champion, state.canary, state.canary_share, state.shadow,
        config.log_root or "off",
    )  # fmt: skip

    import uvicorn

    uvicorn.run(
        create_app(service),
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        access_log=False,  # a line per request costs more than scoring it; /metrics counts them
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
