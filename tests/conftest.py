"""Shared fixtures: every test gets its own TOOLKIT_HOME (weight store); TOOLKIT_DATA is left as set."""
import os

import pytest
import torch

# Two cores, shared: keep intra-op threads at 2 and never busy-wait.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("toolkit_home")
    monkeypatch.setenv("TOOLKIT_HOME", str(home))
    monkeypatch.delenv("TOOLKIT_REPO", raising=False)
    yield home


@pytest.fixture
def seed():
    torch.manual_seed(0)
    return 0
