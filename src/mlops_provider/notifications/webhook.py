"""WebhookNotifier: post a message to a Slack incoming webhook (or any receiver of the same JSON).

A drop-in for the Slack provider's ``SlackWebhookNotifier`` (same arguments: ``slack_webhook_conn_id``, ``text``,
``blocks``, ``unfurl_links``, ``unfurl_media``, ``timeout``) without installing that provider, and alert-aware:
called with an ``alert`` in its context (the provider's operators do so, see ``operators.alerting``) and no
``text``, it posts the alert's own message (``Alert.slack_payload``: the title as ``text``, and ``blocks`` with
the numbers and links).

The webhook URL comes from an Airflow connection, as the Slack provider reads it: the connection's **password**
holds the whole webhook URL (``https://hooks.slack.com/services/T000/B000/XXXX``), or only its token part
(``T000/B000/XXXX``) with the host (default ``hooks.slack.com/services``, scheme from ``schema`` or https). A
connection without a password uses its host as the URL (an ``http`` connection of a receiver of your own). Extras:
``timeout`` (seconds, default 10) and ``proxy``. The URL is a secret: it is never logged nor put in an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk.bases.notifier import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_CONN_ID = "slack_default"
DEFAULT_HOST = "hooks.slack.com/services"
DEFAULT_TIMEOUT = 10.0
FALLBACK_TEXT = "{{ dag.dag_id if dag else '' }} {{ ti.task_id if ti else '' }}: {{ ti.state if ti else '' }}"


class WebhookDeliveryError(RuntimeError):
    """The webhook could not be delivered; the message names the connection, never the URL."""


def webhook_url(conn: Any) -> str:
    """The webhook URL a connection holds (see the module's docstring)."""
    password = (conn.password or "").strip()
    if password and urlsplit(password).scheme in ("http", "https"):
        return password
    host = (conn.host or "").strip()
    if not password and not host:
        raise WebhookDeliveryError(
            f"The connection {conn.conn_id!r} holds no webhook URL: put the whole URL "
            "(https://hooks.slack.com/services/T000/B000/XXXX) in its password."
        )
    host = host or DEFAULT_HOST
    if not urlsplit(host).scheme:
        port = f":{conn.port}" if conn.port else ""
        head, _, path = host.partition("/")
        host = f"{(conn.schema or 'https').strip() or 'https'}://{head}{port}" + (f"/{path}" if path else "")
    return host.rstrip("/") + ("/" + password.lstrip("/") if password else "")


class WebhookNotifier(BaseNotifier):
    """Post ``{"text": ..., "blocks": ...}`` to the incoming webhook of ``webhook_conn_id``.

    :param webhook_conn_id: the connection holding the webhook URL (default ``slack_default``); also accepted as
        ``slack_webhook_conn_id``, the Slack provider's name.
    :param text: the message (templated). Default: the alert's title and body when an alert is in the context,
        else the task's state.
    :param blocks: Slack blocks (templated). Default: the alert's blocks when an alert is in the context.
    :param unfurl_links / unfurl_media: Slack's link previews (left to Slack when None).
    :param timeout: seconds to wait for the receiver (default: the connection's ``timeout`` extra, else 10).
    """

    template_fields: Sequence[str] = ("text", "blocks", "webhook_conn_id")

    def __init__(
        self,
        *,
        webhook_conn_id: str | None = None,
        slack_webhook_conn_id: str | None = None,
        text: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if webhook_conn_id and slack_webhook_conn_id and webhook_conn_id != slack_webhook_conn_id:
            raise ValueError("Give webhook_conn_id or slack_webhook_conn_id (the same thing), not both.")
        self.webhook_conn_id = webhook_conn_id or slack_webhook_conn_id or DEFAULT_CONN_ID
        self.text = text
        self.blocks = blocks
        self.unfurl_links = unfurl_links
        self.unfurl_media = unfurl_media
        self.timeout = timeout

    def payload(self, context: Context) -> dict[str, Any]:
        """The JSON to post: the given ``text``/``blocks``, else the alert's, else the task's state."""
        alert: Any = context.get("alert")
        payload: dict[str, Any] = dict(alert.slack_payload()) if alert is not None and not self.text else {}
        if self.text:
            payload["text"] = self.text
            if self.blocks is None:
                payload.pop("blocks", None)
        if not payload:
            payload["text"] = self.render_template(FALLBACK_TEXT, context).strip() or "Airflow notification"
        if self.blocks is not None:
            payload["blocks"] = self.blocks
        for name in ("unfurl_links", "unfurl_media"):
            if getattr(self, name) is not None:
                payload[name] = getattr(self, name)
        return payload

    def _target(self) -> tuple[str, float, str | None]:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(self.webhook_conn_id)
        extra = conn.extra_dejson or {}
        timeout = float(self.timeout or extra.get("timeout") or DEFAULT_TIMEOUT)
        return webhook_url(conn), timeout, extra.get("proxy")

    def _check(self, status: int, text: str) -> None:
        if not 200 <= status < 300:
            raise WebhookDeliveryError(
                f"The webhook of connection {self.webhook_conn_id!r} answered HTTP {status}: {text[:200]!r}"
            )

    def notify(self, context: Context) -> None:
        import httpx

        url, timeout, proxy = self._target()
        payload = self.payload(context)
        try:
            with httpx.Client(timeout=timeout, proxy=proxy) as client:
                response = client.post(url, json=payload)
        except httpx.HTTPError as error:  # the message of some httpx errors holds the URL: leave it out
            raise WebhookDeliveryError(
                f"The webhook of connection {self.webhook_conn_id!r} could not be reached: "
                f"{type(error).__name__} {_without(str(error), url)}"
            ) from None
        self._check(response.status_code, response.text)
        self.log.info("Posted to the webhook of connection %r (HTTP %s).", self.webhook_conn_id, response.status_code)

    async def async_notify(self, context: Context) -> None:
        import httpx

        url, timeout, proxy = self._target()
        payload = self.payload(context)
        try:
            async with httpx.AsyncClient(timeout=timeout, proxy=proxy) as client:
                response = await client.post(url, json=payload)
        except httpx.HTTPError as error:
            raise WebhookDeliveryError(
                f"The webhook of connection {self.webhook_conn_id!r} could not be reached: "
                f"{type(error).__name__} {_without(str(error), url)}"
            ) from None
        self._check(response.status_code, response.text)


def _without(message: str, url: str) -> str:
    return message.replace(url, "<webhook URL>")


# The Slack provider's name, for a drop-in swap.
SlackWebhookNotifier = WebhookNotifier
