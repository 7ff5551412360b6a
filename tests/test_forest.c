/* TAP test of the random-forest classifier (src/search/forest.c).
 *
 * Hand-made data with a known answer:
 *  - one informative feature among noise, considered at every split
 *    (max_features = d): every tree splits on it at the root into pure
 *    leaves, so probabilities are exactly 0 or 1;
 *  - XOR of two binary features: depth-2 trees learn it exactly (the root
 *    split has zero Gini decrease and must be taken anyway), depth-1 trees
 *    give 0.5 everywhere;
 *  - constant features are never split on: changing them at prediction time
 *    changes nothing, and all-constant data gives one-leaf trees holding the
 *    class fractions;
 *  - duplicate points with conflicting labels: fractional leaves (3/4, 1/4).
 * Properties: same seed -> identical bytes; another seed -> another forest;
 * bootstrap off + max_features = d -> identical trees whatever the seed (data
 * without ties); rows of probabilities sum to 1 (3 classes); serialization
 * round trip predicts bit-identically and corrupt images are refused; bad
 * input is an error.
 * Realistic: the 5^6 NAS-Bench-201-like one-hot encodings (6 positions x 5
 * values = 30 features), label = [value 3 appears at >= 2 positions] (34 %
 * positive; the rule "appears >= 3 times" is 10 % positive, so a constant
 * guess would already score 0.90), 300 training samples, accuracy on the
 * other 15325 must exceed 0.85 (sklearn: 0.915 mean over 5 splits).
 * Runs in ~0.1 s.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/forest.h"
#include "tap.h"
#include "util/err.h"
#include "util/rng.h"

#define HEADER_BYTES 24

static forest_opts opts(int max_features, int bootstrap, int max_depth, uint64_t seed)
{
    forest_opts o;
    forest_opts_default(&o);
    o.max_features = max_features;
    o.bootstrap = bootstrap;
    o.max_depth = max_depth;
    o.seed = seed;
    return o;
}

/* proba of class 1 for every row */
static void predict_pos(const forest *f, const double *x, int n, double *p1)
{
    double *p = malloc((size_t)n * 2 * sizeof *p);
    forest_predict_proba(f, x, n, p);
    for (int i = 0; i < n; i++)
        p1[i] = p[2 * i + 1];
    free(p);
}

static void test_single_feature(void)
{
    enum { N = 100, D = 5, NT = 200 };
    double x[N * D], xt[NT * D], p[NT];
    int y[N];
    rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < N + NT; i++) {
        double *row = i < N ? x + i * D : xt + (i - N) * D;
        int label = i % 2;
        for (int j = 0; j < D; j++)
            row[j] = rng_uniform(&r);
        row[2] = label ? 0.9 + 0.1 * rng_uniform(&r) : 0.1 * rng_uniform(&r);
        if (i < N)
            y[i] = label;
    }
    forest *f = NULL;
    forest_opts o = opts(D, 1, 0, 3);
    tap_ok(forest_fit(&f, x, y, N, D, 2, &o) == 0, "fit: one informative feature among %d", D);
    int exact = 1;
    predict_pos(f, xt, NT, p);
    for (int i = 0; i < NT; i++)
        exact &= p[i] == (double)(i % 2);
    predict_pos(f, x, N, p);
    for (int i = 0; i < N; i++)
        exact &= p[i] == (double)y[i];
    tap_ok(exact, "max_features = d: probabilities exactly 0/1 on training and new points");
    forest_free(f);

    o = opts(0, 1, 0, 3);
    forest_fit(&f, x, y, N, D, 2, &o);
    predict_pos(f, xt, NT, p);
    int correct = 0;
    for (int i = 0; i < NT; i++)
        correct += (p[i] > 0.5) == (i % 2);
    tap_ok(correct == NT, "default max_features: %d/%d new points correct", correct, NT);
    forest_free(f);
}

static void test_xor(void)
{
    enum { N = 20 };
    double x[N * 2], corner[8] = {0, 0, 0, 1, 1, 0, 1, 1}, p[4];
    int y[N];
    for (int i = 0; i < N; i++) {
        x[2 * i] = corner[2 * (i % 4)];
        x[2 * i + 1] = corner[2 * (i % 4) + 1];
        y[i] = (int)x[2 * i] ^ (int)x[2 * i + 1];
    }
    forest *f = NULL;
    forest_opts o = opts(2, 0, 2, 5);
    forest_fit(&f, x, y, N, 2, 2, &o);
    predict_pos(f, corner, 4, p);
    tap_ok(p[0] == 0 && p[1] == 1 && p[2] == 1 && p[3] == 0, "XOR, depth 2, no bootstrap: %g %g %g %g", p[0], p[1],
           p[2], p[3]);
    forest_free(f);

    o = opts(2, 0, 1, 5);
    forest_fit(&f, x, y, N, 2, 2, &o);
    predict_pos(f, corner, 4, p);
    tap_ok(p[0] == 0.5 && p[1] == 0.5 && p[2] == 0.5 && p[3] == 0.5,
           "XOR, depth 1: zero-gain root split taken, leaves 0.5: %g %g %g %g", p[0], p[1], p[2], p[3]);
    forest_free(f);

    o = opts(0, 1, 2, 5);
    forest_fit(&f, x, y, N, 2, 2, &o);
    predict_pos(f, corner, 4, p);
    tap_ok(p[0] < 0.5 && p[1] > 0.5 && p[2] > 0.5 && p[3] < 0.5,
           "XOR, depth 2, bootstrap, 1 feature per split: %.3f %.3f %.3f %.3f", p[0], p[1], p[2], p[3]);
    forest_free(f);
}

static void test_constant_features(void)
{
    enum { N = 60, D = 4, NT = 50 };
    double x[N * D], xt[NT * D], xt2[NT * D], p[NT], p2[NT];
    int y[N];
    rng r;
    rng_seed(&r, 12);
    for (int i = 0; i < N + NT; i++) {
        double *row = i < N ? x + i * D : xt + (i - N) * D;
        row[0] = row[3] = 7.0;
        row[1] = rng_uniform(&r);
        row[2] = rng_uniform(&r);
        if (i < N)
            y[i] = row[1] + 0.3 * rng_uniform(&r) > 0.6;
    }
    memcpy(xt2, xt, sizeof xt);
    for (int i = 0; i < NT; i++) {
        xt2[i * D] = -1e9;
        xt2[i * D + 3] = 1e9;
    }
    int same = 1;
    for (int mf = 1; mf <= D; mf++) {
        forest *f = NULL;
        forest_opts o = opts(mf, 1, 0, (uint64_t)mf);
        forest_fit(&f, x, y, N, D, 2, &o);
        predict_pos(f, xt, NT, p);
        predict_pos(f, xt2, NT, p2);
        same &= memcmp(p, p2, sizeof p) == 0;
        forest_free(f);
    }
    tap_ok(same, "constant features never split on (max_features 1..%d)", D);

    /* all features constant: every tree is one leaf with the class fractions */
    double xc[8 * 3];
    int yc[8] = {0, 1, 0, 0, 1, 0, 0, 0};
    for (int i = 0; i < 8 * 3; i++)
        xc[i] = 1.5;
    forest *f = NULL;
    forest_opts o = opts(0, 0, 0, 1);
    tap_ok(forest_fit(&f, xc, yc, 8, 3, 2, &o) == 0, "fit on all-constant features");
    unsigned char *buf = NULL;
    size_t len = 0;
    forest_serialize(f, &buf, &len);
    size_t one_leaf = HEADER_BYTES + (size_t)o.n_trees * (4 + 3 * 4 + 8 + 2 * 8);
    double pc[2];
    forest_predict_proba(f, xc, 1, pc);
    tap_ok(len == one_leaf && pc[0] == 0.75 && pc[1] == 0.25, "all constant: one-leaf trees (%zu bytes), p = %g %g",
           len, pc[0], pc[1]);
    free(buf);
    forest_free(f);
}

static void test_duplicates(void)
{
    double x[6] = {0, 0, 0, 0, 1, 1}, q[2] = {0, 1}, p[4];
    int y[6] = {0, 0, 1, 0, 1, 1};
    forest *f = NULL;
    forest_opts o = opts(0, 0, 0, 2);
    forest_fit(&f, x, y, 6, 1, 2, &o);
    forest_predict_proba(f, q, 2, p);
    tap_ok(p[0] == 0.75 && p[1] == 0.25 && p[2] == 0 && p[3] == 1,
           "conflicting duplicates, no bootstrap: x=0 -> %g %g, x=1 -> %g %g", p[0], p[1], p[2], p[3]);
    forest_free(f);
    o = opts(0, 1, 0, 2);
    forest_fit(&f, x, y, 6, 1, 2, &o);
    forest_predict_proba(f, q, 2, p);
    tap_ok(p[1] > 0 && p[1] < 0.5, "conflicting duplicates, bootstrap: x=0 -> p1 = %.3f (fractional)", p[1]);
    forest_free(f);
}

/* The NAS-Bench-201-like space: architecture a has value (a / 5^k) % 5 at
 * position k; x is (15625 x 30) one-hot. */
#define NARCH 15625
static void onehot_space(double *x, int *label)
{
    for (int a = 0; a < NARCH; a++) {
        int n3 = 0, v = a;
        for (int k = 0; k < 6; k++, v /= 5) {
            for (int j = 0; j < 5; j++)
                x[(size_t)a * 30 + 5 * k + j] = j == v % 5;
            n3 += v % 5 == 3;
        }
        label[a] = n3 >= 2;
    }
}

/* Gather rows idx[0:n) of x (.. x d) and label. */
static void gather(const double *x, const int *label, const int *idx, int n, int d, double *xs, int *ys)
{
    for (int i = 0; i < n; i++) {
        memcpy(xs + (size_t)i * d, x + (size_t)idx[i] * d, (size_t)d * sizeof *xs);
        ys[i] = label[idx[i]];
    }
}

static void test_onehot(const double *x, const int *label)
{
    enum { NTR = 300, NTE = NARCH - NTR };
    int *idx = malloc(NARCH * sizeof *idx), *ytr = malloc(NTR * sizeof *ytr), *yte = malloc(NTE * sizeof *yte);
    double *xtr = malloc(NTR * 30 * sizeof *xtr), *xte = malloc((size_t)NTE * 30 * sizeof *xte);
    double *p = malloc(NTE * sizeof *p), *p2 = malloc(NTE * sizeof *p2);
    rng r;
    rng_seed(&r, 2024);
    for (int i = 0; i < NARCH; i++)
        idx[i] = i;
    rng_shuffle(&r, idx, NARCH);
    gather(x, label, idx, NTR, 30, xtr, ytr);
    gather(x, label, idx + NTR, NTE, 30, xte, yte);

    forest *f = NULL, *g = NULL, *h = NULL;
    forest_opts o = opts(0, 1, 0, 7);
    tap_ok(forest_fit(&f, xtr, ytr, NTR, 30, 2, &o) == 0, "fit: one-hot space, %d samples x 30 features", NTR);
    predict_pos(f, xte, NTE, p);
    int correct = 0, pos = 0;
    for (int i = 0; i < NTE; i++) {
        correct += (p[i] > 0.5) == yte[i];
        pos += yte[i];
    }
    double acc = (double)correct / NTE, base = (double)(pos > NTE - pos ? pos : NTE - pos) / NTE;
    tap_diag("one-hot rule [value 3 at >= 2 positions]: held-out accuracy %.4f (majority guess %.4f)", acc, base);
    tap_ok(acc > 0.85, "held-out accuracy %.4f > 0.85", acc);

    /* determinism and seed dependence */
    unsigned char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0;
    forest_fit(&g, xtr, ytr, NTR, 30, 2, &o);
    o.seed = 8;
    forest_fit(&h, xtr, ytr, NTR, 30, 2, &o);
    forest_serialize(f, &b1, &l1);
    forest_serialize(g, &b2, &l2);
    forest_serialize(h, &b3, &l3);
    tap_ok(l1 == l2 && memcmp(b1, b2, l1) == 0, "same seed: identical forests (%zu bytes)", l1);
    predict_pos(h, xte, NTE, p2);
    int differ = 0;
    for (int i = 0; i < NTE; i++)
        differ += p[i] != p2[i];
    tap_ok((l1 != l3 || memcmp(b1, b3, l1) != 0) && differ > 0, "another seed: another forest (%d/%d predictions differ)",
           differ, NTE);
    forest_free(g);
    forest_free(h);

    /* Two values per feature are split into their runs, more are sorted:
     * the same data with every value moved up by its own amount under
     * 1e-8 (less than the 1e-7 under which values count as equal) has more
     * than two values wherever a node has more than two samples, so it is
     * sorted, and must give the same trees: the same size and the same
     * predictions everywhere (thresholds move by less than 1e-8). */
    double *xs = malloc(NTR * 30 * sizeof *xs);
    for (int i = 0; i < NTR * 30; i++)
        xs[i] = xtr[i] + i * 1e-12;
    o.seed = 7;
    forest_fit(&g, xs, ytr, NTR, 30, 2, &o);
    free(b2);
    forest_serialize(g, &b2, &l2);
    predict_pos(g, xte, NTE, p2);
    tap_ok(l1 == l2 && memcmp(p, p2, NTE * sizeof *p) == 0,
           "features of two values split in one pass: the forest of the sorted ones");
    forest_free(g);
    free(xs);

    /* serialization round trip */
    tap_ok(forest_deserialize(&g, b1, l1) == 0, "deserialize");
    predict_pos(g, xte, NTE, p2);
    free(b2);
    b2 = NULL;
    forest_serialize(g, &b2, &l2);
    tap_ok(memcmp(p, p2, NTE * sizeof *p) == 0 && l2 == l1 && memcmp(b1, b2, l1) == 0 &&
               forest_n_features(g) == 30 && forest_n_classes(g) == 2,
           "round trip: identical predictions and bytes");
    forest_free(g);

    /* corrupt images are refused */
    unsigned char *c = malloc(l1 + 1);
    int refused = 0, tries = 0;
    memcpy(c, b1, l1);
    refused += forest_deserialize(&g, c, l1 - 1) < 0 && !g, tries++;
    c[l1] = 0;
    refused += forest_deserialize(&g, c, l1 + 1) < 0 && !g, tries++;
    c[0] = 'X';
    refused += forest_deserialize(&g, c, l1) < 0 && !g, tries++;
    c[0] = b1[0];
    c[HEADER_BYTES + 4 + 4] = 0; /* root's left child -> itself */
    refused += forest_deserialize(&g, c, l1) < 0 && !g, tries++;
    memcpy(c, b1, l1);
    memset(c + HEADER_BYTES + 4 + 20, 0xff, 8); /* root's class-0 value -> NaN */
    refused += forest_deserialize(&g, c, l1) < 0 && !g, tries++;
    refused += forest_deserialize(&g, c, 10) < 0 && !g, tries++;
    tap_ok(refused == tries, "corrupt images refused (%d/%d): %s", refused, tries, rm_last_error());
    free(c);
    free(b1);
    free(b2);
    free(b3);
    forest_free(f);
    free(idx);
    free(ytr);
    free(yte);
    free(xtr);
    free(xte);
    free(p);
    free(p2);
}

/* With every feature considered at every split, the random feature order
 * only decides between splits of equal Gini decrease (sklearn: "the best
 * found split may vary ... if the improvement of the criterion is identical
 * for several splits"). Such ties are common in small nodes of arbitrary
 * data, so the data here have none: the label is a function of x0 with
 * unequal class blocks, the other features are noise. */
static void test_no_randomness(void)
{
    enum { N = 80, D = 6 };
    double x[N * D];
    int y[N];
    rng r;
    rng_seed(&r, 13);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            x[i * D + j] = rng_uniform(&r);
        double v = x[i * D];
        y[i] = (v >= 0.2 && v < 0.45) || v >= 0.8;
    }
    forest *f = NULL, *g = NULL;
    forest_opts o = opts(D, 0, 0, 1);
    forest_fit(&f, x, y, N, D, 2, &o);
    o.seed = 2;
    forest_fit(&g, x, y, N, D, 2, &o);
    unsigned char *b1 = NULL, *b2 = NULL;
    size_t l1 = 0, l2 = 0;
    forest_serialize(f, &b1, &l1);
    forest_serialize(g, &b2, &l2);
    /* trees are consecutive blocks after the header */
    size_t nb = 3 * 4 + 8 + 2 * 8, first = 4 + nb * (b1[HEADER_BYTES] | b1[HEADER_BYTES + 1] << 8);
    int same = l1 == HEADER_BYTES + (size_t)o.n_trees * first;
    for (int t = 1; same && t < o.n_trees; t++)
        same = memcmp(b1 + HEADER_BYTES, b1 + HEADER_BYTES + t * first, first) == 0;
    tap_ok(same && first > 4 + nb, "bootstrap off, max_features = d: %d identical trees of %zu nodes", o.n_trees,
           (first - 4) / nb);
    tap_ok(l1 == l2 && memcmp(b1, b2, l1) == 0, "... and the same forest for seeds 1 and 2");
    free(b1);
    free(b2);
    forest_free(f);
    forest_free(g);
}

static void test_multiclass(void)
{
    enum { N = 150, D = 4, NT = 100, K = 3 };
    double x[N * D], xt[NT * D], p[NT * K];
    int y[N];
    rng r;
    rng_seed(&r, 14);
    for (int i = 0; i < N * D; i++)
        x[i] = rng_normal(&r);
    for (int i = 0; i < NT * D; i++)
        xt[i] = 2 * rng_normal(&r);
    for (int i = 0; i < N; i++)
        y[i] = x[i * D] + 0.5 * rng_normal(&r) < -0.5 ? 0 : x[i * D + 1] > 0 ? 1 : 2;
    forest *f = NULL;
    tap_ok(forest_fit(&f, x, y, N, D, K, NULL) == 0, "fit: %d classes, default options (opts NULL)", K);
    double worst = 0;
    int in_range = 1;
    forest_predict_proba(f, xt, NT, p);
    for (int i = 0; i < NT; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            s += p[i * K + k];
            in_range &= p[i * K + k] >= 0 && p[i * K + k] <= 1;
        }
        worst = fmax(worst, fabs(s - 1));
    }
    tap_ok(worst <= 1e-12 && in_range, "probabilities in [0, 1] sum to 1 (max |sum - 1| = %.2g)", worst);
    forest_free(f);
}

typedef struct bad_case {
    const char *what;
    int n, d, n_classes, y0;
    double x0;
    forest_opts o;
} bad_case;

static void test_bad_input(void)
{
    enum { NCASE = 9 };
    double x[4 * 2] = {0, 1, 1, 0, 0, 0, 1, 1};
    int y[4] = {0, 1, 1, 0};
    forest_opts ok = opts(0, 1, 0, 1);
    bad_case cases[NCASE];
    for (int i = 0; i < NCASE; i++)
        cases[i] = (bad_case){"", 4, 2, 2, 0, 0.0, ok};
    cases[0].what = "n = 0", cases[0].n = 0;
    cases[1].what = "d = 0", cases[1].d = 0;
    cases[2].what = "n_classes = 0", cases[2].n_classes = 0;
    cases[3].what = "label -1", cases[3].y0 = -1;
    cases[4].what = "label = n_classes", cases[4].y0 = 2;
    cases[5].what = "NaN feature", cases[5].x0 = NAN;
    cases[6].what = "n_trees = 0", cases[6].o.n_trees = 0;
    cases[7].what = "max_features > d", cases[7].o.max_features = 3;
    cases[8].what = "min_samples_split = 1", cases[8].o.min_samples_split = 1;
    for (int i = 0; i < NCASE; i++) {
        static char sentinel;
        forest *f = (forest *)&sentinel; /* a failed fit must reset it to NULL */
        x[0] = cases[i].x0;
        y[0] = cases[i].y0;
        rm_clear_error();
        int rc = forest_fit(&f, x, y, cases[i].n, cases[i].d, cases[i].n_classes, &cases[i].o);
        tap_ok(rc == -1 && f == NULL && rm_last_error()[0], "%s is an error: %s", cases[i].what, rm_last_error());
    }
    x[0] = 0;
    y[0] = 0;
    forest *f = NULL;
    tap_ok(forest_fit(&f, NULL, y, 4, 2, 2, &ok) == -1 && forest_fit(NULL, x, y, 4, 2, 2, &ok) == -1,
           "NULL data or output is an error");
    tap_ok(forest_fit(&f, x, y, 4, 2, 2, &ok) == 0, "the same call with valid input succeeds");
    forest_free(f);
}

int main(void)
{
    double *x = malloc((size_t)NARCH * 30 * sizeof *x);
    int *label = malloc(NARCH * sizeof *label);
    if (!x || !label) {
        printf("1..0 # SKIP out of memory\n");
        return 0;
    }
    onehot_space(x, label);
    test_single_feature();
    test_xor();
    test_constant_features();
    test_duplicates();
    test_no_randomness();
    test_multiclass();
    test_onehot(x, label);
    test_bad_input();
    free(x);
    free(label);
    printf("1..%d\n", tap_n);
    return tap_done();
}
