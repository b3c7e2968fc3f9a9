"""The networks of REFERENCE §3: architecture, parameter counts (computed by hand here), options."""

import pytest
import torch
from torch import nn

from deeprelax.nets import AllCNN, LeNet, MnistFC, count_parameters, create_model


def linear(i, o):
    return i * o + o


def conv(ci, co, k):
    return ci * co * k * k + co


def bn(c):
    return 2 * c


def test_mnistfc_parameter_count():
    expected = linear(784, 1024) + bn(1024) + linear(1024, 1024) + bn(1024) + linear(1024, 10)
    assert expected == 1_867_786
    assert count_parameters(MnistFC()) == expected
    assert count_parameters(MnistFC(bn="none")) == expected - 2 * bn(1024)


def test_lenet_parameter_count_and_spatial_sizes():
    # 28 -conv5-> 24 -pool3-> 8 -conv5-> 4 -pool2-> 2: the flattened feature has 50·2·2 = 200 entries
    expected = conv(1, 20, 5) + bn(20) + conv(20, 50, 5) + bn(50) + linear(50 * 2 * 2, 500) + linear(500, 10)
    assert expected == 131_220
    assert count_parameters(LeNet()) == expected
    assert count_parameters(LeNet(fc_bn=True)) == expected + bn(500)
    flat = [m for m in LeNet().net if isinstance(m, nn.Linear)][0]
    assert flat.in_features == 200


def test_allcnn_parameter_count_is_about_1_67_million():
    convs = conv(3, 96, 3) + 2 * conv(96, 96, 3) + conv(96, 192, 3) + 4 * conv(192, 192, 3) + conv(192, 10, 1)
    bns = 3 * bn(96) + 5 * bn(192) + bn(10)
    assert convs + bns == 1_667_166
    assert count_parameters(AllCNN()) == convs + bns
    original = convs - conv(192, 192, 3) + conv(192, 192, 1)
    assert count_parameters(AllCNN(variant="original")) == original + bns


@pytest.mark.parametrize(
    "name,shape", [("mnistfc", (1, 28, 28)), ("lenet", (1, 28, 28)), ("allcnn", (3, 32, 32))]
)
@pytest.mark.parametrize("bn_pos", ["after", "before", "none"])
def test_forward_shapes_and_backward(name, shape, bn_pos):
    torch.manual_seed(0)
    narrow = {"c1": 8, "c2": 16} if name == "allcnn" else {}  # same layers, fewer channels: fast
    model = create_model(name, bn=bn_pos, **narrow)
    x = torch.randn(4, *shape)
    out = model(x)
    assert out.shape == (4, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_allcnn_full_width_forward():
    torch.manual_seed(0)
    with torch.no_grad():
        assert AllCNN().eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def _kinds(seq):
    return [type(m).__name__ for m in seq]


def test_block_order_reference_and_port():
    # reference: Linear → ReLU → BN → Dropout; the PyTorch port: Linear → BN → ReLU
    ref = _kinds(MnistFC().net)
    assert ref[:7] == ["Flatten", "Dropout", "Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    port = _kinds(MnistFC(bn="before").net)
    assert port[2:5] == ["Linear", "BatchNorm1d", "ReLU"]
    # LeNet: conv → ReLU → maxpool 3 → BN → dropout
    assert _kinds(LeNet().net)[:5] == ["Conv2d", "ReLU", "MaxPool2d", "BatchNorm2d", "Dropout"]
    assert _kinds(LeNet(bn="before").net)[:4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]


def test_dropout_values_are_applied():
    m = MnistFC(dropout=0.5, input_dropout=0.1)
    ps = [d.p for d in m.modules() if isinstance(d, nn.Dropout)]
    assert ps == [0.1, 0.5, 0.5]
    assert {d.p for d in LeNet(dropout=0.25).modules() if isinstance(d, nn.Dropout)} == {0.25}
    a = [d.p for d in AllCNN().modules() if isinstance(d, nn.Dropout)]
    assert a == [0.2, 0.5, 0.5]


def test_eval_mode_is_deterministic():
    torch.manual_seed(1)
    m = LeNet().eval()
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(m(x), m(x))


@pytest.mark.parametrize(
    "kwargs,arg",
    [({"dropout": 1.0}, "dropout"), ({"bn": "middle"}, "bn"), ({"input_dropout": -0.1}, "input_dropout")],
)
def test_invalid_options_raise_value_error_naming_them(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        MnistFC(**kwargs)


def test_unknown_model_and_variant():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet")
    with pytest.raises(ValueError, match="variant"):
        AllCNN(variant="wide")
