#!/usr/bin/env python3
"""float32 numpy training of the networks `pdmm bench train` times, on one thread.

For users who have numpy (not part of the tests). It trains a dense ReLU network with
softmax cross-entropy and plain SGD (He-uniform init, mean gradient over the batch), the
same shapes, batch sizes and MAC count convention as `pdmm bench train`:
forward + backward data (all layers but the first) + weight update, per sample.

    python3 tools/numpy/train_float32.py                        # mnist 784-256x3-10, B=32 and 128
    python3 tools/numpy/train_float32.py --widths 64,128,128,128,10 --data Data/digits.csv

Prints samples/s and GMAC/s of the training steps only (data loading and the first
warm-up steps excluded), to set next to the `step GMAC/s` column of `pdmm bench train`.
"""
import argparse
import gzip
import os
import sys
import time

# One thread: the BLAS numpy uses would otherwise take every core.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[var] = "1"

import numpy as np  # noqa: E402


def load_csv(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    first = lines[0].split(",")
    try:
        float(first[0])
        rows = lines
    except ValueError:
        rows = lines[1:]  # a header line
    data = np.array([[float(v) for v in r.split(",")] for r in rows], dtype=np.float32)
    y = data[:, -1].astype(np.int64)  # the label is the last column, as in the tool's default
    x = data[:, :-1]
    return x, y


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="Data/mnist_5k.csv.gz")
    p.add_argument("--widths", default="784,256,256,256,10")
    p.add_argument("--batch", default="32,128", help="comma-separated batch sizes")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=0.05)
    a = p.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    x, y = load_csv(a.data)
    if x.shape[1] != widths[0]:
        sys.exit(f"{a.data}: {x.shape[1]} features, the network reads {widths[0]}")
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)  # per-feature scaling, like the tool's
    x = x.astype(np.float32)
    rng = np.random.default_rng(1)
    n = len(x)
    order = rng.permutation(n)
    train = order[: n * 8 // 10]
    L = len(widths) - 1
    macs = sum(widths[l] * widths[l + 1] for l in range(L))  # forward
    macs += sum(widths[l] * widths[l + 1] for l in range(1, L))  # backward data (not into the input)
    macs += sum(widths[l] * widths[l + 1] for l in range(L))  # weight update (gradient sums)
    print(f"numpy {np.__version__}, float32, one thread; network {'-'.join(map(str, widths))}, "
          f"{macs} MACs per sample")
    print("| batch | samples/s | GMAC/s |")
    print("|---:|---:|---:|")
    for B in (int(b) for b in a.batch.split(",")):
        W = [rng.uniform(-1, 1, (widths[l + 1], widths[l])).astype(np.float32) * np.float32(np.sqrt(6 / widths[l]))
             for l in range(L)]
        b = [np.zeros(widths[l + 1], np.float32) for l in range(L)]
        lr = np.float32(a.lr / B)
        batches = len(train) // B

        def step(k):
            idx = train[(k % batches) * B:(k % batches + 1) * B]
            acts = [x[idx]]
            for l in range(L):
                z = acts[-1] @ W[l].T + b[l]
                acts.append(np.maximum(z, 0) if l < L - 1 else z)
            z = acts[-1]
            e = np.exp(z - z.max(1, keepdims=True))
            d = e / e.sum(1, keepdims=True)
            d[np.arange(B), y[idx]] -= 1
            for l in range(L - 1, -1, -1):
                gW = d.T @ acts[l]
                gb = d.sum(0)
                if l > 0:
                    d = (d @ W[l]) * (acts[l] > 0)
                W[l] -= lr * gW
                b[l] -= lr * gb

        for k in range(8):
            step(k)
        k, t0 = 8, time.perf_counter()
        while time.perf_counter() - t0 < a.seconds:
            step(k)
            k += 1
        dt = time.perf_counter() - t0
        sps = (k - 8) * B / dt
        print(f"| {B} | {sps:.0f} | {sps * macs / 1e9:.2f} |")


if __name__ == "__main__":
    main()
