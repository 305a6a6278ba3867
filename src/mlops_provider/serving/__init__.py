"""``mlops-serve``: online scoring that follows the MLflow registry.

Plain Python on FastAPI and uvicorn, no Airflow: it may import ``mlops_provider.core`` only. One process serves one
registered model. Requests are answered by the ``champion`` alias's version, or by the ``canary`` alias's version
for a stable share of request keys (registered-model tag ``mlops.rollout.canary_share``); the ``shadow`` alias's
version scores the same rows off the response path. Every answer and every shadow score goes to the prediction
log of ``core.performance.log`` (the one ``BatchPredictOperator`` writes), journaled before the answer is sent.

Modules: ``routing`` (the immutable routing snapshot, the stable hash), ``follower`` (reads the aliases, loads new
versions in the background, swaps the snapshot), ``payload`` (request bodies to frames, scores to answers),
``journal`` (the durable journal and its conversion into log files), ``shadow`` (the shadow worker), ``metrics``,
``app`` (the FastAPI app) and ``cli`` (``mlops-serve``).
"""
