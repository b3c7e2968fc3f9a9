"""The smallest real ``deeprelax train`` run on the bundled subset, as command-line arguments (shared by the
CLI tests, so that every one of them trains on the same few images and a change of the subset's options is
made once)."""


def tiny_train_argv(
    *, data: bool = True, epochs: int | None = 1, threads: int | None = 1, optimizer: str | None = None
) -> list[str]:
    """``train`` arguments (without the ``train`` word and ``--out``): 64 training / 50 test images, batches
    of 16, one step per epoch, one BatchNorm dry-feed batch, no progress bar. ``None`` leaves an option out
    (to take a config file's value or to pass it per test)."""
    argv = ["--data", "mnist-subset"] if data else []
    argv += ["--n-train", "64", "--n-test", "50", "--batch-size", "16", "--steps-per-epoch", "1"]
    if epochs is not None:
        argv += ["--epochs", str(epochs)]
    argv += ["--dry-feed-batches", "1"]
    if threads is not None:
        argv += ["--threads", str(threads)]
    argv += ["--no-progress"]
    if optimizer is not None:
        argv += ["--optimizer", optimizer]
    return argv
