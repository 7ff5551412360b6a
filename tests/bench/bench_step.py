#!/usr/bin/python3
"""PyTorch twin of bench_step.c: one training step (forward, cross-entropy, backward, SGD) at
batch 32 for ResNet-20 and the ResNet-like NAS-Bench-201 cell, with the reference's networks
(../shared/reference/rmi_ref.py), and the chain and DARTS networks of tests/golden/make_golden.py
(C = 16 for DARTS here). Prints: MODEL median_ms mean_ms min_ms.
Usage: /usr/bin/python3 bench_step.py [STEPS] [WARMUP] (SHARED_DIR locates shared/)."""
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get('SHARED_DIR', os.path.join(HERE, '..', '..', '..', 'shared'))
os.environ.setdefault('RMI_REF_OUT', tempfile.mkdtemp(prefix='rmi-ref-'))
sys.path.insert(0, os.path.join(SHARED, 'reference'))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import rmi_ref  # noqa: E402
sys.path.insert(0, os.path.join(HERE, '..', 'golden'))
import make_golden  # noqa: E402


def bench(name, model, forward, steps, warmup):
    torch.manual_seed(1)
    x = torch.randn(32, 3, 32, 32)
    y = torch.arange(32) % 10
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    t = []
    for s in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(forward(model, x), y)
        loss.backward()
        opt.step()
        if s >= warmup:
            t.append(time.perf_counter() - t0)
    print('%s %.2f %.2f %.2f' % (name, 1e3 * np.median(t), 1e3 * np.mean(t), 1e3 * np.min(t)), flush=True)


def main():
    torch.set_num_threads(int(os.environ.get('THREADS', '2')))
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    bench('resnet20', rmi_ref.ResNet20(), lambda m, x: m(x), steps, warmup)
    arch = '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
    bench('nb201_resnet_cell', rmi_ref.build_nb201(arch), lambda m, x: m(x)[1], steps, warmup)
    chain = make_golden.ChainNetwork(make_golden.CHAIN_ARCHS['chain_mix'])
    bench('chain_mix', chain, lambda m, x: m(x)[1], steps, warmup)
    darts = make_golden.DartsNetwork(16, 10, 8, make_golden.DARTS_ARCHS['darts_mix'])
    bench('darts_mix', darts, lambda m, x: m(x)[1], steps, warmup)


if __name__ == '__main__':
    main()
