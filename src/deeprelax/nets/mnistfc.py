"""``mnistfc``: the fully connected MNIST network of the Deep Relaxation / Entropy-SGD experiments.

Reference architecture (REFERENCE §3)::

    x (1×28×28) → flatten → Dropout(0.2) → Linear(784, 1024) → ReLU → BN → Dropout(p)
                          → Linear(1024, 1024) → ReLU → BN → Dropout(p) → Linear(1024, 10)

with ``p = 0.2`` as in the Deep Relaxation code (the Entropy-SGD code used ``p = 0.5``). ``bn="before"`` puts
BatchNorm between the linear map and the ReLU (the usual placement elsewhere); ``bn="none"`` drops it.
Parameters: 784·1024 + 1024 + 1024·1024 + 1024 + 1024·10 + 10 weights and biases plus 2·2·1024 BN affine
parameters = 1 867 786.
"""

from __future__ import annotations

from torch import Tensor, nn

from deeprelax.nets._layers import affine_block, check_bn, check_dropout


class MnistFC(nn.Module):
    """784-1024-1024-10 perceptron with input dropout, BatchNorm and dropout after each hidden layer."""

    def __init__(
        self,
        *,
        hidden: int = 1024,
        dropout: float = 0.2,
        input_dropout: float = 0.2,
        bn: str = "after",
        in_features: int = 784,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
        check_bn(bn)
        check_dropout("dropout", dropout)
        check_dropout("input_dropout", input_dropout)
        layers: list[nn.Module] = [nn.Flatten(), nn.Dropout(input_dropout)]
        width = in_features
        for _ in range(2):
            layers += affine_block(nn.Linear(width, hidden), hidden, bn)
            layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
