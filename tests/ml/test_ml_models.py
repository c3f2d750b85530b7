from __future__ import annotations

import numpy as np
import pytest
import torch

from components.ml.models import MODEL_REGISTRY, EncoderLayer
from components.ml.training import TrainingConfig, predict_proba, train_model

WINDOW, FEATURES = 8, 4
CONFIG = TrainingConfig(
    window=WINDOW, width=16, epochs=6, batch_size=64, lr=3e-3, max_samples=None, val_fraction=0.25,
    threads=1,  # pytest -n 2 already fills both cores; two threads each would oversubscribe
)


def planted_sequences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label = sign of feature 0 two steps back plus feature 1 now: needs the sequence."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, WINDOW, FEATURES)).astype(np.float32) * 3 + 1  # not standardised
    y = ((X[:, -3, 0] - 1) + (X[:, -1, 1] - 1) > 0).astype(np.float64)
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return planted_sequences(2400, seed=7)


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_model_maps_a_batch_of_windows_to_one_logit_each(name: str) -> None:
    model = MODEL_REGISTRY[name](FEATURES, WINDOW, width=8)

    assert model(torch.randn(5, WINDOW, FEATURES)).shape == (5,)
    assert sum(p.numel() for p in model.parameters()) < 50_000


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_model_learns_a_planted_signal_and_trains_deterministically(
    name: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    fresh_X, fresh_y = planted_sequences(1000, seed=8)

    bundle, metrics = train_model(name, X, y, CONFIG)
    again, _ = train_model(name, X, y, CONFIG)

    assert metrics["train_loss"][-1] < metrics["train_loss"][0] - 0.1
    hit = ((predict_proba(bundle, fresh_X) > 0.5) == (fresh_y > 0.5)).mean()
    assert hit > 0.7, f"{name} hit {hit:.3f} on fresh data, chance is 0.5"
    for (key, a), b in zip(bundle.module.state_dict().items(), again.module.state_dict().values(),
                           strict=True):
        assert torch.equal(a, b), f"{name}.{key} differs between two seeded runs"
    np.testing.assert_array_equal(predict_proba(bundle, fresh_X), predict_proba(again, fresh_X))


def test_scaler_is_fit_on_training_rows_only(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    shifted = X.copy()
    n_fit = len(y) - int(round(len(y) * CONFIG.val_fraction))
    shifted[n_fit:] += 100.0  # validation rows only

    config = CONFIG.model_copy(update={"epochs": 1})
    bundle, _ = train_model("cnn", shifted, y, config)

    np.testing.assert_allclose(bundle.mean, X[:n_fit].reshape(-1, FEATURES).mean(0), rtol=1e-5)


def test_training_leaves_global_torch_settings_as_it_found_them(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()

    train_model("attention_mlp", X[:300], y[:300], CONFIG.model_copy(update={"epochs": 1}))

    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


def test_training_refuses_nan_rows_and_unknown_models(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    bad = y.copy()
    bad[-1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_model("lstm", X, bad, CONFIG)
    with pytest.raises(ValueError, match="unknown model"):
        train_model("xgboost", X, y, CONFIG)


def test_early_stopping_keeps_the_best_epoch_and_trains_no_longer_than_patience_after_it(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = data
    X, y = X[:400], np.random.default_rng(3).integers(0, 2, 400).astype(np.float64)  # labels of a coin: it overfits

    stopped, metrics = train_model("cnn", X, y, CONFIG.model_copy(update={"epochs": 20, "patience": 2}))
    best = metrics["best_epoch"]
    exact, _ = train_model("cnn", X, y, CONFIG.model_copy(update={"epochs": best + 1}))

    assert len(metrics["val_loss"]) == best + 3 < 20
    assert min(metrics["val_loss"]) == metrics["val_loss"][best]
    np.testing.assert_array_equal(predict_proba(stopped, X), predict_proba(exact, X))


def test_a_final_encoder_layer_that_queries_only_the_last_step_gives_that_step_of_the_full_layer() -> None:
    torch.manual_seed(0)
    layer = EncoderLayer(16, 4, 32)
    x = torch.randn(5, WINDOW, 16)

    last = layer(x, last_only=True)

    assert last.shape == (5, 1, 16)
    torch.testing.assert_close(last[:, 0], layer(x)[:, -1], rtol=1e-5, atol=1e-6)
