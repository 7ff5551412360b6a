#!/usr/bin/python3
"""Golden values for the RMI evaluator (tests/test_rmi.c), from the PyTorch reference.

For each architecture: the reference's data pipeline selects the 32-image batch (512-image pool,
data seed 0, fine-tuned teacher shared/data/teachers/resnet20-c10q75.safetensors, train-mode BN),
the student starts from OUR seeded init (make_golden.our_init, seed 7, so the C side rebuilds the
same weights), and the reference's loop (rmi_ref.rmi_score: SGD lr 0.1 momentum 0.9 wd 5e-4,
loss 0.8*sum(1-CKA_i) + 0.2*CE) runs STEPS steps recording loss, CE and the three CKA values of
every forward. The same run in float64, and float32 runs from inputs perturbed by 1e-7 relative,
give per step how far rounding alone moves the values ('spread'): the C test's tolerance at a
step is max(base, 3 * spread).

Writes tests/golden/rmi.safetensors: x [32,3,32,32], labels [32] (I64), and per architecture
A in {resnet, pool}: A.loss, A.ce, A.cka1, A.cka2, A.cka3 [STEPS] (float32 run) and
A.spread_loss, A.spread_cka1..3 [STEPS] (largest |f32 - other| / |other|). Metadata: archs, steps.
Needs the CIFAR-10 binaries: RMI_REF_C10=DIR (from shared/data/cifar10/make-cifar10-bin).
Run: RMI_REF_C10=/tmp/c10bin /usr/bin/python3 tests/golden/make_rmi_golden.py
"""
import os
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_golden as mg  # noqa: E402  (sets up rmi_ref with a temporary results dir)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

rmi_ref = mg.rmi_ref
STEPS = int(os.environ.get('STEPS', '150'))
PERTURBATIONS = 3
ARCHS = OrderedDict([
    ('resnet', '|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'),
    ('pool', '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|'),
])
TEACHER_FT = os.path.join(mg.SHARED, 'data', 'teachers', 'resnet20-c10q75.safetensors')


def run(arch, X, y, feats, dtype):
    model = rmi_ref.build_nb201(arch)
    mg.our_init(model, mg.SEED)
    model = model.to(dtype)
    model.train()
    opt = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9, weight_decay=5e-4)
    ce_fn = nn.CrossEntropyLoss()
    X = X.to(dtype)
    feats = [f.to(dtype) for f in feats]
    n = X.size(0)
    rec = {k: [] for k in ('loss', 'ce', 'cka1', 'cka2', 'cka3')}
    for _ in range(STEPS):
        opt.zero_grad()
        fs, logits = model(X)
        ce = ce_fn(logits, y)
        s = rmi_ref.cka_list(fs, feats, n)
        loss = 0.8 * torch.sum(3 - s[0] - s[1] - s[2]) + 0.2 * ce
        loss.backward()
        opt.step()
        rec['loss'].append(float(loss))
        rec['ce'].append(float(ce))
        for i in range(3):
            rec['cka%d' % (i + 1)].append(float(s[i]))
    return rec


def main():
    torch.set_num_threads(int(os.environ.get('THREADS', '2')))
    teacher, _, _ = rmi_ref.load_teacher(TEACHER_FT)
    trx, try_ = rmi_ref.load_train()
    X, y, feats, info = rmi_ref.prepare_rmi_data(teacher, trx, try_, seed=0)
    out = OrderedDict([('x', X.contiguous()), ('labels', y.to(torch.int64))])
    for name, arch in ARCHS.items():
        r32 = run(arch, X, y, feats, torch.float32)
        others = [run(arch, X, y, feats, torch.float64)]
        # float32 runs from inputs perturbed at the rounding level: the ResNet cell's trajectory
        # is chaotic around step 10 (its loss there moves by up to 1e-1 under a 1e-7 perturbation)
        for seed in range(PERTURBATIONS):
            gen = torch.Generator().manual_seed(seed)
            others.append(run(arch, X * (1 + 1e-7 * torch.randn(X.shape, generator=gen)), y, feats, torch.float32))
        r64 = others[0]
        for k in ('loss', 'ce', 'cka1', 'cka2', 'cka3'):
            out['%s.%s' % (name, k)] = torch.tensor(r32[k], dtype=torch.float32)
        for k in ('loss', 'cka1', 'cka2', 'cka3'):
            sp = [max(abs(a - o[k][i]) / max(abs(o[k][i]), 1e-30) for o in others)
                  for i, a in enumerate(r32[k])]
            out['%s.spread_%s' % (name, k)] = torch.tensor(sp, dtype=torch.float32)
        print('%s: loss step1 %.6f step10 %.6f step%d %.6f (float64 %.6f); max spread %.2e'
              % (name, r32['loss'][0], r32['loss'][min(9, STEPS - 1)], STEPS, r32['loss'][-1], r64['loss'][-1],
                 max(float(v.max()) for k, v in out.items() if k.startswith(name + '.spread'))), flush=True)
    meta = OrderedDict([('archs', ','.join('%s=%s' % kv for kv in ARCHS.items())), ('steps', str(STEPS)),
                        ('teacher', 'shared/data/teachers/resnet20-c10q75.safetensors'),
                        ('data', 'rmi_ref.prepare_rmi_data(seed=0): 512 pool, 32 lowest-CE, train-mode BN'),
                        ('student_init', 'make_golden.our_init seed %d' % mg.SEED),
                        ('pool_acc', '%.4f' % info['pool_acc']), ('torch', torch.__version__)])
    path = os.path.join(HERE, 'rmi.safetensors')
    rmi_ref.st_save(path, out, meta)
    print('wrote %s (%d bytes)' % (path, os.path.getsize(path)))


if __name__ == '__main__':
    main()
