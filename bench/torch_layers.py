"""PyTorch's time for one 3x3 convolution of each R2U-Net level, forward and backward (input and
weight gradients), on a training batch (32 patches of 48x48 at the first level), 2 threads: the
per-layer figures that bench/NOTES.md sets beside `examples/kernel_bench.rs`. Best of 12 runs.

    OMP_NUM_THREADS=2 bench/.venv/bin/python bench/torch_layers.py
"""
import time

import torch

torch.set_num_threads(2)
for channels, side in [(16, 48), (32, 24), (64, 12), (128, 6)]:
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    x = torch.randn(32, channels, side, side, requires_grad=True)
    best = float("inf")
    for _ in range(12):
        start = time.perf_counter()
        y = conv(x)
        y.backward(torch.ones_like(y))
        best = min(best, time.perf_counter() - start)
    print(f"{channels} channels at {side}x{side}: {best * 1e3:.2f} ms forward + backward")
