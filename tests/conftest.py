"""Shared test settings: CPU only, one torch thread (the CI machine has 2 cores), quiet Warp."""

import os

os.environ.setdefault("WARP_LOG_LEVEL", "error")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]
