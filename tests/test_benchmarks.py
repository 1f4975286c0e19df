"""The benchmark functions behind ``scripts/benchmark_*.py`` return their figures (sizes kept tiny; no timing is
asserted, only that each setting was measured)."""

from __future__ import annotations


def test_policy_benchmark_measures_each_setting_and_the_training_step():
    from vt_refine.app.benchmarks.policy import benchmark_policy

    report = benchmark_policy(["quick"], [1, 2], ["ddim"], repeats=1, budget_s=1.0, train_batch=2, train_repeats=1)
    assert [(row["batch"], row["sampler"], row["denoising_steps"]) for row in report["inference"]] == [
        (1, "ddim", 5), (2, "ddim", 5)]
    assert all(row["median_ms"] > 0 and row["runs"] == 1 for row in report["inference"])
    assert report["train"][0]["batch"] == 2 and report["train"][0]["step_median_ms"] > 0
