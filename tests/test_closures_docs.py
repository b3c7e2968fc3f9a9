"""docs/porting.md: the "after" loop runs as written, on the bundled MNIST subset."""

import argparse
import re
from pathlib import Path

import torch
from torch import nn

from deeprelax.nets import load_dataset

PORTING = Path(__file__).resolve().parents[1] / "docs" / "porting.md"


def porting_block() -> str:
    text = PORTING.read_text()
    match = re.search(
        r"<!-- this block is executed by tests/test_closures_docs.py -->\n```python\n(.*?)```", text, re.S
    )
    assert match, "the tested block of docs/porting.md is missing"
    return match.group(1)


def test_porting_after_block_trains_one_epoch(capsys):
    data = load_dataset("mnist-subset").subset(n_train=600)
    dataset = torch.utils.data.TensorDataset(data.x_train, data.y_train)
    train_loader = torch.utils.data.DataLoader(dataset, batch_size=50, shuffle=True)  # 12 batches
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10), nn.LogSoftmax(dim=1))
    namespace = {"model": model, "train_loader": train_loader, "device": torch.device("cpu")}
    exec(compile(porting_block(), str(PORTING), "exec"), namespace)
    args = argparse.Namespace(log_interval=1)
    before = [p.detach().clone() for p in model.parameters()]
    namespace["train"](args, model, namespace["device"], train_loader, namespace["optimizer"], 1)
    closure = namespace["closure"]
    assert closure.steps_per_epoch == 12 // 6
    assert closure.grad_evals == 12 and closure.data_epochs == 1.0
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
    out = capsys.readouterr().out
    assert re.search(r"Train Epoch: 1 \[1/2\]\tLoss: \d\.\d+\t\(effective epochs 0\.83, 12 gradients\)", out)
