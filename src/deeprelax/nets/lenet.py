"""``lenet``: the LeNet of the Deep Relaxation / Entropy-SGD MNIST experiments (with BatchNorm and dropout).

Reference architecture (REFERENCE §3), input 1×28×28::

    conv 20@5×5 (→ 20×24×24) → ReLU → maxpool 3 (→ 20×8×8) → BN → Dropout(p)
    conv 50@5×5 (→ 50×4×4)   → ReLU → maxpool 2 (→ 50×2×2) → BN → Dropout(p)
    flatten (200) → Linear(200, 500) → ReLU → Dropout(p) → Linear(500, 10)

The reference lists the fully connected part as "FC 500 → dropout → FC 10"; the ReLU after FC 500 is implied
(two affine maps in a row would collapse into one). ``fc_bn=True`` adds BatchNorm on the 500 units;
``bn="before"`` moves each BatchNorm between the affine map and the ReLU (the usual placement elsewhere).
Dropout ``p`` ranges over 0.25–0.5 in the reference runs; default 0.5.
Parameters (defaults): (20·25 + 20) + 2·20 + (50·20·25 + 50) + 2·50 + (200·500 + 500) + (500·10 + 10)
= 131 220.
"""

from __future__ import annotations

from torch import Tensor, nn

from deeprelax.nets._layers import affine_block, check_bn, check_dropout


class LeNet(nn.Module):
    """Two conv/pool/BN/dropout blocks and a 500-unit fully connected layer."""

    def __init__(
        self,
        *,
        dropout: float = 0.5,
        bn: str = "after",
        fc_bn: bool = False,
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        check_bn(bn)
        check_dropout("dropout", dropout)
        layers: list[nn.Module] = []
        layers += affine_block(nn.Conv2d(in_channels, 20, 5), 20, bn, pool=nn.MaxPool2d(3), dims=2)
        layers.append(nn.Dropout(dropout))
        layers += affine_block(nn.Conv2d(20, 50, 5), 50, bn, pool=nn.MaxPool2d(2), dims=2)
        layers.append(nn.Dropout(dropout))
        layers.append(nn.Flatten())
        layers += affine_block(nn.Linear(50 * 2 * 2, 500), 500, bn if fc_bn else "none")
        layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(500, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
