#!/usr/bin/python3
"""Summarize a ranking benchmark: rank_summary.py RMINAS.csv REFERENCE.csv
RMINAS.log REFERENCE.log NB201.csv (logs from /usr/bin/time -v; '-' to skip)."""
import csv
import re
import statistics
import sys

from scipy.stats import kendalltau, spearmanr


def load(path):
    return {r["arch"]: r for r in csv.DictReader(open(path))}


def maxrss(log):
    if log == "-":
        return None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", open(log).read())
    return int(m.group(1)) / 1024 if m else None


ours, ref = load(sys.argv[1]), load(sys.argv[2])
truth = {r["arch"]: float(r["cifar10_test"]) for r in csv.DictReader(open(sys.argv[5]))}
common = [a for a in ours if a in ref]
print("architectures: rminas %d, reference %d, both %d" % (len(ours), len(ref), len(common)))
for name, d in (("rminas", ours), ("reference", ref)):
    t = sorted(float(d[a]["seconds"]) for a in common)
    q = statistics.quantiles(t, n=4)
    acc = [truth[a] for a in d]
    neg = [-float(d[a]["score"]) for a in d]
    tau, rho = kendalltau(neg, acc)[0], spearmanr(neg, acc)[0]
    print("%-9s seconds per architecture: median %.2f (quartiles %.2f %.2f, min %.2f, max %.2f, "
          "total %.0f)" % (name, statistics.median(t), q[0], q[2], t[0], t[-1], sum(t)))
    print("%-9s kendall tau %.3f  spearman rho %.3f  (-score vs cifar10_test, %d archs)"
          % (name, tau, rho, len(d)))
    rss = maxrss(sys.argv[3] if name == "rminas" else sys.argv[4])
    if rss:
        print("%-9s peak resident memory %.0f MB" % (name, rss))
acc = [truth[a] for a in ours]
for col in ("params", "flops"):
    v = [float(ours[a][col]) for a in ours]
    print("baseline %-6s kendall tau %.3f  spearman rho %.3f" % (col, kendalltau(v, acc)[0],
                                                             spearmanr(v, acc)[0]))
mo = statistics.median(float(ours[a]["seconds"]) for a in common)
mr = statistics.median(float(ref[a]["seconds"]) for a in common)
print("median time ratio rminas / reference: %.3f (reference / rminas %.2fx)" % (mo / mr, mr / mo))
