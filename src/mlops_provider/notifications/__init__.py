"""Airflow notifiers of the provider (``WebhookNotifier``: Slack's incoming webhooks and compatible receivers)."""
