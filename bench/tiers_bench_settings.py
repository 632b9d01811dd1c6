"""Tiers as the test suite configures it, with the benchmark's extra endpoints (bench/tiers_bench_urls.py)."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "bench.tiers_bench_urls"
