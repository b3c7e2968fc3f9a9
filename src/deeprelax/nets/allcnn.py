"""``allcnn``: All-CNN-C with BatchNorm, the CIFAR-10 network of the Deep Relaxation experiments.

Reference architecture (REFERENCE §3), input 3×32×32, every convolution followed by ReLU and BatchNorm::

    Dropout(0.2)
    conv3×3  96, conv3×3  96, conv3×3  96 stride 2 (→ 16×16)   Dropout(0.5)
    conv3×3 192, conv3×3 192, conv3×3 192 stride 2 (→ 8×8)     Dropout(0.5)
    conv3×3 192, conv3×3 192, conv1×1 10  → global average pool → 10 logits

(all 3×3 convolutions padded by 1). About 1.67 M parameters; weight decay 1e-3 in the reference runs.
``variant="original"`` replaces the second-to-last 3×3 convolution by the 1×1 192 of Springenberg et al.'s
All-CNN-C. ``bn="before"`` puts BatchNorm before the ReLU, ``bn="none"`` removes it.
"""

from __future__ import annotations

from torch import Tensor, nn

from deeprelax.nets._layers import affine_block, check_bn, check_dropout

VARIANTS = ("deeprelax", "original")


class AllCNN(nn.Module):
    """All-CNN-C (BatchNorm variant): nine convolutions, no fully connected layer, global average pooling."""

    def __init__(
        self,
        *,
        dropout: float = 0.5,
        input_dropout: float = 0.2,
        bn: str = "after",
        variant: str = "deeprelax",
        c1: int = 96,
        c2: int = 192,
        in_channels: int = 3,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        check_bn(bn)
        check_dropout("dropout", dropout)
        check_dropout("input_dropout", input_dropout)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if c1 < 1 or c2 < 1:
            raise ValueError(f"c1 and c2 must be positive, got c1={c1!r}, c2={c2!r}")

        def conv(ci: int, co: int, k: int, stride: int = 1) -> list[nn.Module]:
            return affine_block(nn.Conv2d(ci, co, k, stride=stride, padding=k // 2), co, bn, dims=2)

        k8 = 3 if variant == "deeprelax" else 1
        layers: list[nn.Module] = [nn.Dropout(input_dropout)]
        layers += conv(in_channels, c1, 3) + conv(c1, c1, 3) + conv(c1, c1, 3, stride=2)
        layers.append(nn.Dropout(dropout))
        layers += conv(c1, c2, 3) + conv(c2, c2, 3) + conv(c2, c2, 3, stride=2)
        layers.append(nn.Dropout(dropout))
        layers += conv(c2, c2, 3) + conv(c2, c2, k8) + conv(c2, num_classes, 1)
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
