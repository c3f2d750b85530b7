from __future__ import annotations

import pytest
import torch
from torch import nn

from components.ml.models import MODEL_REGISTRY
from components.ml.optimizer import AdamW

WINDOW, FEATURES = 8, 4


def _trained(name: str, make_optimizer, steps: int = 25) -> list[torch.Tensor]:
    torch.manual_seed(0)
    module = MODEL_REGISTRY[name](FEATURES, WINDOW, width=8)
    opt = make_optimizer(module.parameters())
    data = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, WINDOW, FEATURES, generator=data)
        y = (torch.rand(32, generator=data) > 0.5).float()
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(module(x), y).backward()
        nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_adamw_steps_every_member_to_the_same_bits_as_torch_optim(name: str) -> None:
    ours = _trained(name, lambda params: AdamW(params, lr=2e-3, weight_decay=1e-4))
    theirs = _trained(name, lambda params: torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4))

    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(ours, _trained(name, lambda p: AdamW(p, 2e-3, 1e-4), 0),
                                                      strict=True))  # it did move the weights


def test_a_parameter_without_a_gradient_is_left_alone() -> None:
    used, unused = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = AdamW([used, unused], lr=0.1, weight_decay=0.01)
    (used * 2).sum().backward()
    opt.step()

    assert torch.equal(unused, torch.ones(3)) and not torch.equal(used.detach(), torch.ones(3))
