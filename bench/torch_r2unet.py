#!/usr/bin/env python3
"""PyTorch side of the native speed benchmark: the same R2U-Net as the Rust `r2unet` crate.

Builds R2U-Net (widths 16-32-64-128, one input channel, t = 2), prints its trainable parameter
count (1,043,313, the figure `r2unet bench` prints) and measures, on the CPU:

* training throughput: 48x48 random patches, batch 32, Adam (lr 1e-3, eps 1e-8),
  BCEWithLogitsLoss; 2 warm-up steps, then --steps timed steps, in patches/s;
* whole-image inference: the green channel of DRIVE test/images/01_test.tif, zero-padded to
  584x568 (a multiple of 8), one forward pass plus sigmoid in eval mode, best of 3, seconds;
* peak resident memory (ru_maxrss), MiB.

--json writes the figures with the same keys as `r2unet bench --json`; --onnx exports the model
(input "input", [1, 1, H, W] with H and W dynamic, opset 17) for the browser benchmark.
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

WIDTHS = (16, 32, 64, 128)
T = 2
PATCH = 48
BATCH = 32
EXPECTED_PARAMS = 1_043_313


def parse_args():
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps after 2 warm-up steps")
    p.add_argument("--drive", type=Path, default=here.parent.parent / "shared" / "data" / "DRIVE",
                   help="DRIVE root holding test/images/01_test.tif (default ../shared/data/DRIVE "
                        "relative to the repository root)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--onnx", type=Path, help="also export the model to this ONNX file")
    p.add_argument("--expect-params", type=int, help="exit non-zero unless the parameter count is this")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = parse_args()
# OpenMP and MKL read these when torch is loaded; set_num_threads below covers the rest.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(ARGS.threads))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


class Rcl(nn.Module):
    """Recurrent convolutional layer: the feed-forward conv runs once, the recurrent conv t
    times, one BatchNorm shared by every time step."""

    def __init__(self, c, t=T):
        super().__init__()
        self.wf = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.wr = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
        self.t = t

    def forward(self, x):
        fx = self.wf(x)
        h = torch.relu(self.bn(fx))
        for _ in range(self.t):
            h = torch.relu(self.bn(fx + self.wr(h)))
        return h


class Unit(nn.Module):
    """Recurrent residual unit: a 1x1 entry conv, two RCLs, and the entry added back."""

    def __init__(self, cin, cout, t=T):
        super().__init__()
        self.entry = nn.Conv2d(cin, cout, 1, bias=True)
        self.first = Rcl(cout, t)
        self.second = Rcl(cout, t)

    def forward(self, x):
        e = self.entry(x)
        return e + self.second(self.first(e))


class R2UNet(nn.Module):
    def __init__(self, in_channels=1, widths=WIDTHS, t=T):
        super().__init__()
        chans = (in_channels,) + tuple(widths)
        self.encoders = nn.ModuleList(Unit(chans[i], chans[i + 1], t) for i in range(len(widths)))
        self.pool = nn.MaxPool2d(2)
        levels = range(len(widths) - 2, -1, -1)  # from the bottom up
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[l + 1], widths[l], 2, stride=2, bias=True) for l in levels)
        self.decoders = nn.ModuleList(Unit(2 * widths[l], widths[l], t) for l in levels)
        self.head = nn.Conv2d(widths[0], 1, 1, bias=True)

    def forward(self, x):
        skips = []
        for i, enc in enumerate(self.encoders):
            if i > 0:
                x = self.pool(x)
            x = enc(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for up, dec in zip(self.ups, self.decoders):
            x = dec(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


def trainable_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_green(drive):
    """The green channel of 01_test.tif in [0, 1], and where it came from."""
    path = drive / "test" / "images" / "01_test.tif"
    try:
        from PIL import Image
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        return rgb[:, :, 1].astype(np.float32) / 255.0, str(path)
    except ImportError:
        pass
    except OSError as e:
        print(f"warning: cannot read {path} ({e}); using random data of DRIVE's size", file=sys.stderr)
        return np.random.default_rng(0).random((584, 565), dtype=np.float32), "random 584x565 (image unreadable)"
    try:
        import tifffile
        rgb = tifffile.imread(path)
        return rgb[:, :, 1].astype(np.float32) / 255.0, str(path)
    except ImportError:
        print("warning: neither Pillow nor tifffile is installed; using random data of DRIVE's size",
              file=sys.stderr)
        return np.random.default_rng(0).random((584, 565), dtype=np.float32), "random 584x565 (no TIFF reader)"


def pad_to(img, multiple=8):
    h, w = img.shape
    ph, pw = -h % multiple, -w % multiple
    return np.pad(img, ((0, ph), (0, pw)))


def bench_train(model, steps):
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    loss_fn = nn.BCEWithLogitsLoss()
    x = torch.randn(BATCH, 1, PATCH, PATCH)
    y = (torch.rand(BATCH, 1, PATCH, PATCH) < 0.1).float()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * BATCH / (time.perf_counter() - start)


def bench_infer(model, image):
    h, w = image.shape
    model.eval()
    best = float("inf")
    with torch.no_grad():
        for _ in range(3):
            start = time.perf_counter()
            padded = pad_to(image)
            x = torch.from_numpy(padded).reshape(1, 1, *padded.shape)
            probs = torch.sigmoid(model(x))[0, 0, :h, :w].numpy()
            best = min(best, time.perf_counter() - start)
    assert probs.shape == (h, w)
    return best


def export_onnx(model, path):
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, 584, 568)
    try:
        # The exporter torch recommends (torch.export based; needs `onnx` and `onnxscript`).
        # H and W are dynamic but must stay multiples of 8 (three 2x2 poolings).
        h8, w8 = torch.export.Dim("h8", min=1, max=512), torch.export.Dim("w8", min=1, max=512)
        torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_shapes={"x": {2: 8 * h8, 3: 8 * w8}}, opset_version=17, dynamo=True, external_data=False)
    except Exception as e:  # noqa: BLE001 - fall back to the TorchScript exporter
        print(f"note: torch.export-based ONNX export failed ({type(e).__name__}: {e}); "
              "trying the TorchScript exporter", file=sys.stderr)
        torch.onnx.export(model, (dummy,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {2: "height", 3: "width"}, "logits": {2: "height", 3: "width"}},
                          opset_version=17, dynamo=False)
    print(f"ONNX model written to {path}")


def main():
    torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)
    model = R2UNet()
    params = trainable_params(model)
    isa = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability {isa}")
    print(f"trainable parameters: {params}")
    if ARGS.expect_params is not None and params != ARGS.expect_params:
        print(f"error: expected {ARGS.expect_params} trainable parameters, got {params}", file=sys.stderr)
        return 1

    image, source = load_green(ARGS.drive)
    train = bench_train(model, ARGS.steps)
    print(f"training: {train:.1f} patches/s ({PATCH}x{PATCH}, batch {BATCH}, {ARGS.steps} steps)")
    infer = bench_infer(model, image)
    padded = pad_to(image).shape
    print(f"DRIVE image: {infer:.3f} s best of 3 ({source}, padded to {padded[0]}x{padded[1]})")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(f"peak RSS: {rss:.0f} MiB")

    result = {
        "backend": "pytorch",
        "threads": torch.get_num_threads(),
        "cpu_isa": isa,
        "params": params,
        "train_patches_per_s": train,
        "infer_drive_image_s": infer,
        "peak_rss_mib": rss,
    }
    if ARGS.json:
        ARGS.json.parent.mkdir(parents=True, exist_ok=True)
        ARGS.json.write_text(json.dumps(result, indent=2) + "\n")
    if ARGS.onnx:
        export_onnx(model, ARGS.onnx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
