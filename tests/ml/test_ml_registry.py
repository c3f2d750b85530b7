from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from components.ml.registry import ModelRegistry
from components.ml.scoring import score_span
from components.ml.version import EnsembleVersion
from core.market import Bars


def test_saved_version_survives_a_restart_with_its_hash_window_and_predictions(
    tmp_path: Path, good_version: EnsembleVersion, planted: dict[str, Bars]
) -> None:
    bars = planted["SYN/USDT"]
    record = ModelRegistry(tmp_path).save(good_version)

    reopened = ModelRegistry(tmp_path)
    loaded = reopened.load(record.version)

    assert reopened.records() == [record]
    assert record.status == "candidate" and record.version == "v0001"
    assert (tmp_path / "v0001" / "model.pt").exists() and record.path == "v0001/model.pt"
    assert record.sha256 == hashlib.sha256((tmp_path / record.path).read_bytes()).hexdigest()
    assert (record.train_start, record.train_end) == (good_version.train_start, good_version.train_end)
    assert record.metrics["holdout_log_loss"] == good_version.metrics["holdout_log_loss"]
    assert loaded.version == "v0001"
    np.testing.assert_array_equal(
        score_span(loaded, bars, 2000, len(bars)), score_span(good_version, bars, 2000, len(bars))
    )


def test_promotion_retires_the_old_champion_and_rejection_keeps_the_challenger(
    tmp_path: Path, good_version: EnsembleVersion
) -> None:
    registry = ModelRegistry(tmp_path)
    first, second, third = (registry.save(good_version).version for _ in range(3))

    registry.promote(first, "first model")
    registry.promote(second)
    registry.reject(third, "worse on the holdout")

    statuses = {r.version: r.status for r in ModelRegistry(tmp_path).records()}
    assert statuses == {first: "retired", second: "champion", third: "rejected"}
    assert registry.champion().version == second
    assert registry.record(third).reason == "worse on the holdout"
    assert registry.record(first).reason == f"replaced by {second}"


def test_a_retired_champion_can_be_rolled_back_but_a_rejected_one_cannot_win(
    tmp_path: Path, good_version: EnsembleVersion
) -> None:
    registry = ModelRegistry(tmp_path)
    first, second, third = (registry.save(good_version).version for _ in range(3))
    registry.promote(first)
    registry.promote(second)
    registry.reject(third)

    registry.promote(first, "rollback")

    assert registry.champion().version == first
    assert registry.record(second).status == "retired"
    with pytest.raises(ValueError, match="cannot move from 'rejected' to 'champion'"):
        registry.promote(third)
    with pytest.raises(ValueError, match="cannot move from 'champion' to 'rejected'"):
        registry.reject(first)


def test_a_model_file_changed_on_disk_is_refused(tmp_path: Path, good_version: EnsembleVersion) -> None:
    registry = ModelRegistry(tmp_path)
    record = registry.save(good_version)
    path = tmp_path / record.path
    path.write_bytes(path.read_bytes() + b"\0")

    with pytest.raises(ValueError, match="sha256"):
        ModelRegistry(tmp_path).load(record.version)
