"""Regenerating model cards from the operators whose work changes a version's status (see ``core.model_card``).

A card follows an event that already happened (a registration, a gate decision, an alias move, a live evaluation):
a card that cannot be written must not undo or fail that event. So a failure is logged as a warning and the
version is tagged ``mlops.card.stale`` with the reason; the next successful regeneration removes the tag.

Owner and purpose, when neither the version nor the registered model records them: the model's entry in the
fleet catalogue named by ``MLOPS_MODEL_CATALOG`` (its ``owners`` and ``description``), else the task's Airflow
``owner`` when it is not the default (fleet DAGs set it from the entry's owners).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mlops_provider.links.model_card import ModelCardLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

    from mlops_provider.hooks.mlflow import MlflowHook


def refresh_model_cards(
    operator: BaseOperator,
    context: Context,
    hook: MlflowHook,
    model_name: str,
    versions: Iterable[str | None],
    *,
    trigger: str,
    link_version: str | None = None,
    version_tags: dict[str, dict[str, str]] | None = None,
) -> dict[str, str | None]:
    """Regenerate the card of each of ``versions`` of ``model_name`` (after ``trigger``, e.g. "promotion") and
    store the "Model card" link of ``link_version``; returns each card's UI URL (None: no UI URL or no card).
    ``version_tags`` (version -> tags) are set on a version before its card is gathered."""
    from mlops_provider.core import model_card
    from mlops_provider.core import tags as tag_names

    urls: dict[str, str | None] = {}
    fallbacks: dict[str, str] | None = None
    for version in dict.fromkeys(str(v) for v in versions if v not in (None, "")):
        try:
            client = hook.get_conn()
            for key, value in ((version_tags or {}).get(version) or {}).items():
                client.set_model_version_tag(model_name, version, key, value)
            if fallbacks is None:
                fallbacks = card_fallbacks(operator, model_name)
            published = model_card.refresh(
                client, model_name, version, trigger=trigger, ui_url=hook.settings.base_ui_url, **fallbacks
            )
        except Exception as error:  # the event the card follows has happened: warn, never undo or fail it
            operator.log.warning(
                "The model card of %s v%s was not regenerated after the %s (%s: %s); its card on file is out of "
                "date and the version is tagged %s.",
                model_name, version, trigger, type(error).__name__, error, tag_names.CARD_STALE,
            )  # fmt: skip
            try:
                model_card.mark_stale(
                    hook.get_conn(), model_name, version, f"{trigger}: {type(error).__name__}: {error}"
                )
            except Exception as tag_error:  # e.g. the server is down: the warning above is all that can be said
                operator.log.warning("Could not tag %s v%s's card stale either: %s", model_name, version, tag_error)
            urls[version] = None
            continue
        urls[version] = published.ui_url
        operator.log.info(
            "Model card of %s v%s (%s) regenerated after the %s in %.2f s: %s",
            model_name, version, published.status, trigger, published.seconds,
            published.ui_url or published.artifact_uri,
        )  # fmt: skip
    if link_version is not None:
        ModelCardLink.persist(context, urls.get(str(link_version)))
    return urls


def card_fallbacks(operator: Any, model_name: str) -> dict[str, str]:
    """Owner and purpose from the fleet catalogue entry, else the task's owner (see the module's docstring)."""
    found: dict[str, str] = {}
    path = os.environ.get("MLOPS_MODEL_CATALOG", "").strip()
    if path:
        try:
            from mlops_provider.fleet.catalogue import load_catalogue

            entry = load_catalogue(path).models.get(model_name)
        except Exception as error:  # a broken catalogue is the fleet report's to explain, not the card's
            operator.log.info("Model card: the catalogue %s could not be read for owners (%s).", path, error)
            entry = None
        if entry is not None:
            source = f"from the fleet catalogue entry {model_name!r}"
            if entry.owners:
                found.update(owner=", ".join(entry.owners), owner_source=source)
            if entry.description:
                found.update(purpose=entry.description, purpose_source=source)
    if "owner" not in found:
        from airflow.configuration import conf

        owner = getattr(operator, "owner", None)
        if owner and owner != conf.get("operators", "default_owner", fallback="airflow"):
            found.update(owner=str(owner), owner_source="from the Airflow task's owner")
    return found
