#!/usr/bin/env python3
"""Append the evaluations of a search CSV (`export csv search`) to a score
log (`set score_log`) that rminas made under the same settings, skipping the
architectures the log already has.

    search_csv_to_log.py SEARCH.csv LOG.csv

For a search whose state file is gone but whose CSV export is kept (the
CSV has 9 significant digits; the log keeps every digit of what rminas
scores itself). LOG.csv and LOG.csv.settings must exist: make them by
scoring one or two of the CSV's architectures with `set score_log LOG.csv`
and `rank FILE` under the search's settings, and compare those scores with
the CSV's first, which this script also does (it refuses a difference
beyond the CSV's 9 digits)."""
import csv
import os
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, log = sys.argv[1], sys.argv[2]
    if not os.path.exists(log + ".settings"):
        sys.exit(f"{log}.settings is missing: make the log with rminas first")
    with open(log, newline="") as f:
        have = {r["arch"]: r for r in csv.DictReader(f)}
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    checked = 0
    for r in rows:
        h = have.get(r["arch"])
        if h is None:
            continue
        a, b = float(r["score"]), float(h["score"])
        if abs(a - b) > 1e-8 * max(abs(a), abs(b)):
            sys.exit(f"{r['arch']}: {src} has score {r['score']}, {log} has {h['score']}: "
                     "not the same settings")
        checked += 1
    if not checked:
        sys.exit(f"no architecture of {src} is in {log}: score one first to check the settings")
    with open(log, "a", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        n = 0
        for r in rows:
            if r["arch"] in have:
                continue
            have[r["arch"]] = r
            bench = r.get("cifar10_test", "nan")
            w.writerow([r["arch"], r["score"], r["cka1"], r["cka2"], r["cka3"], r["ce"],
                        r["seconds"], r["params"], r["flops"], bench])
            n += 1
    print(f"{checked} scores checked against the log, {n} evaluations added to {log}")


if __name__ == "__main__":
    main()
