#!/usr/bin/env python3
"""The PyTorch reference's RMI score on a GPU (or the CPU), for timing against rminas.

Imports rmi_ref.py (from $RMI_REF, a file or its folder; default ../shared/reference
beside the checkout), selects the RMI batch with its prepare_rmi_data on the CPU (so the
batch is the reference's own, bit for bit), then moves the batch, the teacher's features
and each freshly built student (torch.manual_seed(seed) before build_nb201, as rmi_score
does) to --device and runs rmi_score's training loop there, unchanged.

  python3 rmi_ref_gpu.py --archs FILE --out scores.csv [--device cuda] [--steps 150]
                         [--n N] [--teacher F] [--seed 0] [--data-seed 0] [--tf32]

Data paths are rmi_ref's: RMI_REF_C10 (CIFAR-10 binary batches), RMI_REF_TEACHER (or
--teacher). Before the timed architectures it scores one untimed warm-up architecture
(--warmup-arch, default the ResNet-like cell; --no-warmup to skip) so CUDA's and cuDNN's
start-up is left out; its time is reported apart. The CSV (arch, score, cka1..3, ce,
seconds) is flushed after every architecture, so a killed run keeps what it scored; a
JSON file beside it (OUT.json) holds the machine, versions and the warm-up time.
The clock is read after torch.cuda.synchronize(). TF32 is off unless --tf32 (rminas's
CUDA backend computes in plain FP32).
"""
import argparse
import csv
import json
import math
import os
import statistics
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
_ref = os.environ.get('RMI_REF', os.path.join(_here, '..', '..', '..', 'shared', 'reference'))
if _ref.endswith('.py'):
    _ref = os.path.dirname(_ref)
sys.path.insert(0, os.path.abspath(_ref))
# rmi_ref creates its results folder on import: keep it out of the working directory.
os.environ.setdefault('RMI_REF_OUT', os.environ.get('TMPDIR', '/tmp') + '/rmi-ref-results')

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import rmi_ref  # noqa: E402

RESNET_CELL = rmi_ref.MID_ARCH


def sync(dev):
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


def rmi_score_dev(arch_str, data_X, data_y, feature_res, dev, steps=150, lr=0.1, momentum=0.9,
                  wd=5e-4, beta=0.8, seed=0):
    """rmi_ref.rmi_score with the student moved to dev; the loop is the same."""
    torch.manual_seed(seed)
    model = rmi_ref.build_nb201(arch_str, 10).to(dev)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr, momentum=momentum, weight_decay=wd)
    loss_fun_log = nn.CrossEntropyLoss()
    n = data_X.size(0)
    for cur in range(1, steps + 1):
        optimizer.zero_grad()
        features, logits = model(data_X)
        loss_logits = loss_fun_log(logits, data_y)
        s = rmi_ref.cka_list(features, feature_res, n)
        loss_cka = torch.sum(3 - s[0] - s[1] - s[2])
        loss = beta * loss_cka + (1 - beta) * loss_logits
        loss.backward()
        optimizer.step()
        if cur == steps:
            val = float(loss.detach().cpu().numpy())
            score = math.inf if math.isnan(val) else val
            return dict(score=score, raw=val, cka=[float(x.detach()) for x in s],
                        ce=float(loss_logits.detach()))


def timed(arch, data, dev, a):
    sync(dev)
    t0 = time.perf_counter()
    r = rmi_score_dev(arch, *data, dev, steps=a.steps, seed=a.seed)
    sync(dev)
    return r, time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--archs', required=True, help='architecture strings, one per line')
    p.add_argument('--out', required=True, help='CSV: arch, score, cka1..3, ce, seconds')
    p.add_argument('--device', default='cuda')
    p.add_argument('--steps', type=int, default=150)
    p.add_argument('--n', type=int, default=0, help='only the first N architectures (0: all)')
    p.add_argument('--teacher', default=rmi_ref.TEACHER_FT)
    p.add_argument('--seed', type=int, default=0, help='torch.manual_seed before each student')
    p.add_argument('--data-seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: leave)')
    p.add_argument('--tf32', action='store_true', help='allow TF32 in cuDNN and cuBLAS')
    p.add_argument('--cudnn-benchmark', action='store_true')
    p.add_argument('--warmup-arch', default=RESNET_CELL)
    p.add_argument('--no-warmup', action='store_true')
    a = p.parse_args()

    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    archs = [ln.strip() for ln in open(a.archs) if ln.strip() and not ln.startswith('#')]
    if a.n:
        archs = archs[:a.n]

    t0 = time.perf_counter()
    teacher, _, _ = rmi_ref.load_teacher(a.teacher)
    trx, try_ = rmi_ref.load_train()
    data_X, data_y, feat, info = rmi_ref.prepare_rmi_data(teacher, trx, try_, seed=a.data_seed)
    del trx, try_
    t_data = time.perf_counter() - t0
    rmi_ref.log('RMI data on the CPU: pool acc %.3f, max CE among the kept %.3g (%.1f s)'
                % (info['pool_acc'], info['selected_ce_max'], t_data))
    t0 = time.perf_counter()
    data = (data_X.to(dev), data_y.to(dev), [f.to(dev) for f in feat])
    sync(dev)
    t_move = time.perf_counter() - t0

    meta = dict(device=str(dev), torch=torch.__version__, cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version() if dev.type == 'cuda' else None,
                gpu=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else None,
                tf32=a.tf32, cudnn_benchmark=a.cudnn_benchmark, steps=a.steps, seed=a.seed,
                data_seed=a.data_seed, teacher=os.path.basename(a.teacher),
                data_seconds=t_data, first_transfer_seconds=t_move)
    if not a.no_warmup:
        r, dt = timed(a.warmup_arch, data, dev, a)
        meta.update(warmup_arch=a.warmup_arch, warmup_seconds=dt, warmup_score=r['score'])
        rmi_ref.log('warm-up %s score %.6f %.2f s (untimed)' % (a.warmup_arch, r['score'], dt))
    jpath = a.out + '.json'
    json.dump(meta, open(jpath, 'w'), indent=1)

    secs = []
    with open(a.out, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(['arch', 'score', 'cka1', 'cka2', 'cka3', 'ce', 'seconds'])
        for k, arch in enumerate(archs):
            r, dt = timed(arch, data, dev, a)
            secs.append(dt)
            w.writerow([arch, repr(r['score']), repr(r['cka'][0]), repr(r['cka'][1]),
                        repr(r['cka'][2]), repr(r['ce']), '%.4f' % dt])
            f.flush()
            rmi_ref.log('[%d/%d] %s score %.6f cka %.5f %.5f %.5f ce %.5f %.2f s'
                        % (k + 1, len(archs), arch, r['score'], *r['cka'], r['ce'], dt))
    meta.update(n=len(secs), median_seconds=statistics.median(secs) if secs else None,
                total_seconds=sum(secs))
    json.dump(meta, open(jpath, 'w'), indent=1)
    print(json.dumps(meta))


if __name__ == '__main__':
    main()
