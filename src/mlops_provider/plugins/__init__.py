"""Airflow plugins of the provider, each registered as an ``airflow.plugins`` entry point (pyproject.toml)."""
