import os

# One thread per process: the tests' tensors are small, and on a 2-core machine that other jobs (or the tests'
# own subprocesses) share, several intra-op threads per process oversubscribe the cores and run far slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
