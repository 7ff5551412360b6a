#!/usr/bin/python3
"""Compare rminas' random forest (src/search/forest.c) with scikit-learn's
RandomForestClassifier(n_estimators=30), other options at their defaults.

Run from anywhere (takes ~1 min):
    /usr/bin/python3 tests/forest_vs_sklearn.py [--seeds 10] [--keep DIR]
Needs a C compiler, numpy and scikit-learn (Debian: apt-get install -y
python3-sklearn). Not part of make check: CI has no scikit-learn.

The random streams differ, so the two agree in distribution only. For each
data set both are fitted with several seeds on the same training CSV and
predict the same test CSV (through tests/forest_driver.c, compiled here
against the library sources). Checked, means over seeds:
  - held-out accuracy:                   |C - sklearn| < 0.03
  - mean predicted probability of the positive class (every class when there
    are more than two) on the test set:  |C - sklearn| < 0.02
  - correlation of the seed-averaged probabilities of the two:  > 0.9
  - mean tree size (nodes per tree):     |C / sklearn - 1| < 0.05
The report also gives sklearn's own split-half correlation (seeds of one half
averaged against the other half) as the noise ceiling for the correlation.
Exit status 1 when any check fails.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.ensemble import RandomForestClassifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NB201_CSV = os.path.join(ROOT, '..', 'shared', 'data', 'nb201', 'nb201.csv')
OPS = ['none', 'skip_connect', 'nor_conv_1x1', 'nor_conv_3x3', 'avg_pool_3x3']
N_TRAIN = 300


def onehot(codes):
    """codes (n x 6) of op indices -> (n x 30) one-hot, position-major."""
    x = np.zeros((len(codes), 30))
    for k in range(6):
        x[np.arange(len(codes)), 5 * k + codes[:, k]] = 1
    return x


def split_train_test(x, y, rs, n_train=N_TRAIN):
    idx = rs.permutation(len(x))
    return x[idx[:n_train]], y[idx[:n_train]], x[idx[n_train:]], y[idx[n_train:]]


def data_onehot_rule(min_count):
    """5^6 one-hot space, label = [op 3 at >= min_count positions]."""
    codes = np.array([[(a // 5 ** k) % 5 for k in range(6)] for a in range(5 ** 6)])
    y = ((codes == 3).sum(1) >= min_count).astype(int)
    return split_train_test(onehot(codes), y, np.random.RandomState(1))


def data_nb201():
    """Real NAS-Bench-201 one-hot encodings; label = cifar10_test in the top
    5 % of a random 300-architecture training sample (the same threshold
    labels the other architectures)."""
    codes, acc = [], []
    with open(NB201_CSV) as f:
        for row in csv.DictReader(f):
            ops = [tok.split('~')[0] for tok in row['arch'].split('|') if '~' in tok]
            codes.append([OPS.index(op) for op in ops])
            acc.append(float(row['cifar10_test']))
    x, acc = onehot(np.array(codes)), np.array(acc)
    idx = np.random.RandomState(2).permutation(len(x))
    tr, te = idx[:N_TRAIN], idx[N_TRAIN:]
    thr = np.quantile(acc[tr], 0.95)
    y = (acc >= thr).astype(int)
    return x[tr], y[tr], x[te], y[te]


def data_continuous():
    """Dense Gaussian features, a noisy nonlinear rule: thresholds between
    arbitrary doubles."""
    rs = np.random.RandomState(3)
    x = rs.normal(size=(2400, 10))
    z = x[:, 0] + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] ** 2 + 0.5 * rs.normal(size=len(x))
    return split_train_test(x, (z > 0).astype(int), rs, 400)


def data_three_class():
    rs = np.random.RandomState(4)
    x = rs.normal(size=(2400, 6))
    y = np.where(x[:, 0] + 0.5 * rs.normal(size=len(x)) < -0.5, 0, np.where(x[:, 1] > 0, 1, 2))
    return split_train_test(x, y, rs, 400)


def write_csv(path, x, y):
    np.savetxt(path, np.column_stack([y, x]), delimiter=',', fmt=['%d'] + ['%.17g'] * x.shape[1])


def run_c(driver, tmp, name, seed, n_classes):
    out = os.path.join(tmp, f'{name}_c{seed}.csv')
    res = subprocess.run([driver, os.path.join(tmp, f'{name}_train.csv'), os.path.join(tmp, f'{name}_test.csv'),
                          str(seed), out], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f'forest_driver failed on {name}: {res.stderr.strip()}')
    nodes = float(res.stdout.split()[1])
    return np.loadtxt(out, delimiter=',', ndmin=2).reshape(-1, n_classes), nodes


def run_sklearn(xtr, ytr, xte, seed):
    m = RandomForestClassifier(n_estimators=30, random_state=seed).fit(xtr, ytr)
    return m.predict_proba(xte), np.mean([e.tree_.node_count for e in m.estimators_])


def compare(name, data, driver, tmp, seeds):
    xtr, ytr, xte, yte = data
    n_classes = int(ytr.max()) + 1
    write_csv(os.path.join(tmp, f'{name}_train.csv'), xtr, ytr)
    write_csv(os.path.join(tmp, f'{name}_test.csv'), xte, yte)
    res = {}
    runs = {'c': [run_c(driver, tmp, name, s, n_classes) for s in seeds],
            's': [run_sklearn(xtr, ytr, xte, s) for s in seeds]}
    for k, r in runs.items():
        p = np.array([q for q, _ in r])  # seeds x n_test x n_classes
        res[k] = {'p': p, 'acc': np.array([(q.argmax(1) == yte).mean() for q in p]),
                  'nodes': np.mean([nd for _, nd in r]), 'mean_p': p.mean(axis=(0, 1))}
    c, s = res['c'], res['s']
    pc, ps = c['p'].mean(0), s['p'].mean(0)
    cols = [1] if n_classes == 2 else list(range(n_classes))
    corr = min(np.corrcoef(pc[:, k], ps[:, k])[0, 1] for k in cols)
    h = len(seeds) // 2
    ceil = min(np.corrcoef(s['p'][:h].mean(0)[:, k], s['p'][h:].mean(0)[:, k])[0, 1] for k in cols)
    d_acc = c['acc'].mean() - s['acc'].mean()
    d_p = max(abs(c['mean_p'][k] - s['mean_p'][k]) for k in cols)
    r_nodes = c['nodes'] / s['nodes'] - 1
    checks = [abs(d_acc) < 0.03, d_p < 0.02, corr > 0.9, abs(r_nodes) < 0.05]
    base = max(np.bincount(yte, minlength=n_classes)) / len(yte)
    print(f'{name}: {len(ytr)} train, {len(yte)} test, {xtr.shape[1]} features, {n_classes} classes, '
          f'majority guess {base:.4f}')
    print(f'  accuracy        C {c["acc"].mean():.4f} (sd {c["acc"].std():.4f})  '
          f'sklearn {s["acc"].mean():.4f} (sd {s["acc"].std():.4f})  diff {d_acc:+.4f}  '
          f'{"ok" if checks[0] else "FAIL"}')
    print(f'  mean P(class{"" if n_classes > 2 else " 1"})  C {np.round(c["mean_p"][cols], 4)}  '
          f'sklearn {np.round(s["mean_p"][cols], 4)}  max diff {d_p:.4f}  {"ok" if checks[1] else "FAIL"}')
    print(f'  corr(avg proba) {corr:.4f} (sklearn split-half {ceil:.4f})  {"ok" if checks[2] else "FAIL"}')
    print(f'  nodes per tree  C {c["nodes"]:.1f}  sklearn {s["nodes"]:.1f}  rel diff {r_nodes:+.4f}  '
          f'{"ok" if checks[3] else "FAIL"}')
    return all(checks)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seeds', type=int, default=10)
    ap.add_argument('--keep', help='write the CSVs and the driver here instead of a temporary directory')
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.keep:
            tmp = args.keep
            os.makedirs(tmp, exist_ok=True)
        driver = os.path.join(tmp, 'forest_driver')
        cc = os.environ.get('CC', 'cc')
        subprocess.run([cc, '-std=gnu11', '-O2', '-I', os.path.join(ROOT, 'src'), '-o', driver,
                        *[os.path.join(ROOT, f) for f in ('tests/forest_driver.c', 'src/search/forest.c',
                                                          'src/util/rng.c', 'src/util/err.c')], '-lm'], check=True)
        sets = [('onehot_rule2', data_onehot_rule(2)), ('onehot_rule3', data_onehot_rule(3)),
                ('continuous', data_continuous()), ('three_class', data_three_class())]
        if os.path.exists(NB201_CSV):
            sets.insert(2, ('nb201_top5', data_nb201()))
        else:
            print(f'# {NB201_CSV} not found: skipping the NAS-Bench-201 data set')
        seeds = list(range(args.seeds))
        ok = [compare(name, data, driver, tmp, seeds) for name, data in sets]
    print('all agree' if all(ok) else 'DISAGREEMENT')
    return 0 if all(ok) else 1


if __name__ == '__main__':
    sys.exit(main())
