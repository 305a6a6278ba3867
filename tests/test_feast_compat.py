"""The Feast version check in front of the private Feast calls (mlops_provider.core.features.compat)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_provider.core.errors import ConfigurationError
from mlops_provider.core.features import compat


@pytest.fixture
def unverified(monkeypatch):
    """A process that has not checked the Feast version yet."""
    monkeypatch.setattr(compat, "_verified", False)


def test_installed_feast_is_in_the_tested_range():
    compat.check_feast_version(compat.installed_feast_version())


def test_the_locked_feast_is_in_the_tested_range():
    lock = (Path(__file__).resolve().parents[1] / "uv.lock").read_text()
    locked = re.search(r'\[\[package\]\]\nname = "feast"\nversion = "([^"]+)"', lock)
    assert locked, "feast is in uv.lock"
    compat.check_feast_version(locked.group(1))  # a new lock means re-checking the private calls


@pytest.mark.parametrize("version", ["0.67.0", "0.67.3", "0.67.1.dev4"])
def test_versions_inside_the_range_pass(version):
    compat.check_feast_version(version)


@pytest.mark.parametrize("version", ["0.66.2", "0.68.0", "0.68.0rc1", "1.0.0", "nightly"])
def test_versions_outside_the_range_raise_naming_both_and_the_fix(version):
    with pytest.raises(ConfigurationError) as raised:
        compat.check_feast_version(version)
    message = str(raised.value)
    assert f"Feast {version} is installed" in message
    assert compat.tested_range() in message
    assert f"pip install 'feast[redis,postgres]{compat.tested_range()}'" in message
    assert "FEAST_TESTED" in message


def test_missing_feast_raises_with_the_install_command():
    with pytest.raises(ConfigurationError, match=r"Feast is not installed.*pip install 'feast\[redis,postgres\]>="):
        compat.check_feast_version(None)


def test_private_calls_refuse_an_untested_feast_before_touching_the_store(unverified, monkeypatch):
    monkeypatch.setattr(compat, "installed_feast_version", lambda: "0.70.1")

    class Store:
        def _get_provider(self):
            raise AssertionError("reached Feast's private API")

    with pytest.raises(ConfigurationError, match=r"Feast 0\.70\.1 is installed"):
        compat.provider_of(Store())
    with pytest.raises(ConfigurationError, match=r"Feast 0\.70\.1 is installed"):
        compat.route_online_writes(object(), print)
    assert compat._verified is False, "a failed check is not remembered as passed"


def test_the_check_passes_once_and_is_remembered(unverified, monkeypatch):
    calls = []
    monkeypatch.setattr(compat, "installed_feast_version", lambda: calls.append(1) or "0.67.0")

    class Store:
        def _get_provider(self):
            return "provider"

    assert compat.provider_of(Store()) == "provider"
    assert compat.provider_of(Store()) == "provider"
    assert calls == [1]


def test_importing_the_features_package_imports_no_feast():
    probe = "import sys, mlops_provider.core.features; print('feast' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
