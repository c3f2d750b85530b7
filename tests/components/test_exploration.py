"""Exploration draws are seeded and take about epsilon of the rejected decisions."""

from __future__ import annotations

from components.ml_gate import EpsilonDraw


def test_epsilon_takes_close_to_ten_percent_of_many_rejections():
    draw = EpsilonDraw(0.10, seed=7)
    taken = sum(draw.take() for _ in range(100_000))
    assert 9_700 <= taken <= 10_300  # +- 3 sigma around 10 %


def test_the_same_seed_gives_the_same_draws_and_another_seed_does_not():
    a, b, c = EpsilonDraw(0.1, 1), EpsilonDraw(0.1, 1), EpsilonDraw(0.1, 2)
    seq_a = [a.take() for _ in range(1000)]
    assert seq_a == [b.take() for _ in range(1000)]
    assert seq_a != [c.take() for _ in range(1000)]


def test_zero_and_one_are_never_and_always():
    assert not any(EpsilonDraw(0.0, 3).take() for _ in range(1000))
    assert all(EpsilonDraw(1.0, 3).take() for _ in range(1000))
