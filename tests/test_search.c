/* TAP test of the search (src/search/search.c, search_state.c).
 *
 * Hand-made inputs with known answers: numpy-style quantiles (incl. +inf),
 * per-edge mode with ties, the RMI-NAS answer (mode over the best `top`
 * architectures below tau). A synthetic evaluator (score = a fixed function
 * of the cell: fewer nor_conv_3x3 is worse, plus a per-architecture jitter)
 * drives every algorithm:
 *  - RMI-NAS: n_warm distinct warm-up evaluations, tau = quantile + 1e-9,
 *    labels, success counting, stop at n_collect, cap, the forest finds good
 *    cells far more often than chance;
 *  - random search / REA / REINFORCE: budget, distinct evaluations (random,
 *    REA), REA children differ from a parent in one edge, REINFORCE's policy
 *    moves towards good cells;
 *  - constraints: nothing over the budget is ever evaluated;
 *  - an interrupted evaluation changes nothing;
 *  - save after every k-th evaluation, load, continue: the same evaluations
 *    in the same order and the same answer as an uninterrupted run, for all
 *    four algorithms;
 *  - damaged, truncated, foreign and future-version state files are refused
 *    with an error naming the file, and search_probe says so;
 *  - RMI-NAS's expanded phase scored ahead in rounds (search_ahead): the
 *    evaluations of the search made one at a time, and more of them a
 *    round than breadth first gave;
 *  - scores already in are followed by the speculation, picks are
 *    remembered by state (no forest fitted twice), and a simulated pool of
 *    jobs (search_plan) makes the search's evaluations in less time than
 *    rounds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "search/search.h"
#include "tensor/backend.h"
#include "tap.h"
#include "util/err.h"

static int count_op(const sarch *a, int op)
{
    int n = 0;
    for (int e = 0; e < NB201_EDGES; e++)
        n += a->v[e] == op;
    return n;
}

typedef struct synth {
    int calls;
    int interrupt_at; /* call number that reports an interruption, 0 = never */
} synth;

static double synth_score(const sarch *a)
{
    uint64_t i = 0;
    for (int p = 0; p < SPACE_MAXPOS; p++)
        i = i * 31 + a->v[p];
    double jitter = (double)((i * 2654435761u) % 1000) / 1e4;
    if (a->v[0] == NB201_NONE && a->v[1] == NB201_NONE && a->v[3] == NB201_NONE)
        return INFINITY; /* no path from the input: a failed evaluation */
    return 1.0 - 0.15 * count_op(a, NB201_CONV3) - 0.05 * count_op(a, NB201_CONV1) + jitter;
}

static int synth_eval(void *user, const sarch *a, search_eval *out)
{
    synth *s = user;
    s->calls++;
    if (s->interrupt_at && s->calls == s->interrupt_at)
        return 1;
    out->score = synth_score(a);
    out->cka[0] = out->cka[1] = out->cka[2] = 0.5;
    out->ce = 0.1;
    out->seconds = 0.001;
    out->diverged = isinf(out->score);
    return 0;
}

static int synth_cost(void *user, const sarch *a, double *params, double *flops)
{
    (void)user;
    *params = 1000.0 * count_op(a, NB201_CONV3) + 100.0 * count_op(a, NB201_CONV1);
    *flops = *params * 10;
    return 0;
}

static search_opts small_opts(int algo, uint64_t seed)
{
    search_opts o;
    search_opts_default(&o);
    o.algo = algo;
    o.seed = seed;
    o.n_warm = 40;
    o.n_fitting = 200;
    o.n_collect = 15;
    o.top = 10;
    o.trees = 10;
    o.budget = 60;
    return o;
}

static int run_all(search *s, synth *sy)
{
    for (int guard = 0; guard < 100000; guard++) {
        int rc = search_step(s, synth_eval, synth_cost, sy);
        if (rc == 2)
            return 0;
        if (rc < 0)
            return -1;
    }
    return -1;
}

static int same_records(const search *a, const search *b)
{
    if (a->n != b->n)
        return 0;
    for (int i = 0; i < a->n; i++)
        if (!space_equal(&space_nb201, &a->rec[i].arch, &b->rec[i].arch) ||
            a->rec[i].r.score != b->rec[i].r.score || a->rec[i].good != b->rec[i].good ||
            a->rec[i].phase != b->rec[i].phase ||
            !(a->rec[i].prob == b->rec[i].prob || (isnan(a->rec[i].prob) && isnan(b->rec[i].prob))))
            return 0;
    return 1;
}

static void test_helpers(void)
{
    double v1[10] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    tap_ok(fabs(search_quantile(v1, 10, 0.05) - 1.45) < 1e-12, "quantile 5 %% of 1..10 = 1.45 (numpy)");
    tap_ok(search_quantile(v1, 10, 0.5) == 5.5, "median of 1..10 = 5.5");
    double v2[4] = {4, INFINITY, 1, 2};
    tap_ok(fabs(search_quantile(v2, 4, 0.05) - 1.15) < 1e-12, "quantile with +inf present = 1.15");
    tap_ok(isinf(search_quantile(v2, 4, 0.9)), "a quantile reaching +inf is +inf");
    double v3[1] = {0.25};
    tap_ok(search_quantile(v3, 1, 0.05) == 0.25, "quantile of one value is the value");

    sarch a[4];
    const char *s[4] = {
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|none~2|",
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|",
        "|nor_conv_1x1~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
        "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|",
    };
    for (int i = 0; i < 4; i++)
        space_nb201.parse(s[i], &a[i]);
    sarch m;
    space_select(&space_nb201, a, 4, &m);
    char out[SPACE_STRLEN];
    space_nb201.format(&m, out, sizeof out);
    /* edge0 conv3 2 / conv1 2 -> conv1 (lower index); edge1 none 2 / skip 2 -> none;
     * edge2 skip 2, none 2 -> none; edge3 avg 2, none 2 -> none; edge4 conv1 2 -> conv1;
     * edge5 none */
    tap_ok(!strcmp(out, "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|"),
           "mode per edge, ties to the lower operation: %s", out);
    double x[NB201_EDGES * NB201_NOPS];
    space_encode(&space_nb201, &a[0], x);
    double sum = 0;
    for (int i = 0; i < NB201_EDGES * NB201_NOPS; i++)
        sum += x[i];
    tap_ok(sum == 6 && x[0 * 5 + 3] == 1 && x[1 * 5 + 0] == 1 && x[2 * 5 + 1] == 1,
           "one-hot encoding: 6 ones at edge*5+op");
}

static void test_rminas(void)
{
    search s;
    synth sy = {0, 0};
    search_opts o = small_opts(SEARCH_RMINAS, 11);
    tap_ok(search_init(&s, &space_nb201, &o) == 0, "rminas: init");
    int warm_ok = 1;
    while (s.phase == PHASE_WARMUP) {
        if (search_step(&s, synth_eval, synth_cost, &sy) != 0)
            warm_ok = 0;
        if (s.n > o.n_warm)
            warm_ok = 0;
    }
    tap_ok(warm_ok && s.n == o.n_warm, "warm-up: exactly n_warm (%d) evaluations", s.n);
    double v[40];
    for (int i = 0; i < s.n; i++)
        v[i] = s.rec[i].r.score;
    double tau = search_quantile(v, s.n, 0.05) + 1e-9;
    int labels = 1, good = 0;
    for (int i = 0; i < s.n; i++) {
        labels &= s.rec[i].good == (s.rec[i].r.score < tau);
        good += s.rec[i].good;
    }
    tap_ok(s.tau == tau && labels, "tau = 5 %% quantile of the warm-up + 1e-9 (%g), labels z = [score < tau]", tau);
    tap_ok(good >= 1 && good <= 3, "2-3 of 40 warm-up scores below the 5 %% threshold (%d)", good);
    tap_ok(run_all(&s, &sy) == 0, "rminas runs to the end");
    tap_ok(s.successes == o.n_collect && !strcmp(s.stop_reason, "collected n_collect successes"),
           "stops at n_collect successes (%d)", s.successes);
    int distinct = 1, succ = 0;
    uint8_t *seen = calloc(NB201_COUNT, 1);
    for (int i = 0; i < s.n; i++) {
        int k = space_nb201.index(&s.rec[i].arch);
        distinct &= !seen[k];
        seen[k] = 1;
        if (s.rec[i].phase == PHASE_EXPAND)
            succ += s.rec[i].good;
    }
    free(seen);
    tap_ok(distinct, "every evaluated architecture is distinct");
    tap_ok(succ == s.successes && s.rec[s.n - 1].good, "successes counted in the expanded phase; the last one is a success");
    int expanded = s.n - o.n_warm;
    tap_ok(expanded < 6 * o.n_collect,
           "the forest finds good cells far more often than chance (5 %%): %d evaluations for %d successes",
           expanded, o.n_collect);
    /* the answer: mode over the best top good architectures */
    sarch ans, want;
    search_answer(&s, &ans);
    int idx[1000], m = 0;
    for (int i = 0; i < s.n; i++)
        if (s.rec[i].good)
            idx[m++] = i;
    for (int i = 1; i < m; i++) {
        int t = idx[i], j = i - 1;
        while (j >= 0 && s.rec[idx[j]].r.score > s.rec[t].r.score) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = t;
    }
    sarch top[10];
    for (int i = 0; i < 10; i++)
        top[i] = s.rec[idx[i]].arch;
    space_mode(&space_nb201, top, 10, &want);
    tap_ok(space_equal(&space_nb201, &ans, &want), "answer = per-edge mode of the best top=10 below tau");
    tap_ok(count_op(&ans, NB201_CONV3) >= 4, "the answer is a conv-heavy cell (%d nor_conv_3x3)",
           count_op(&ans, NB201_CONV3));
    search_free(&s);

    /* cap */
    o.cap = 45;
    search_init(&s, &space_nb201, &o);
    run_all(&s, &sy);
    tap_ok(s.n == 45 && !strcmp(s.stop_reason, "reached the cap on evaluations"), "cap 45 stops after 45 evaluations");
    search_free(&s);
}

static void test_baselines(void)
{
    synth sy = {0, 0};
    search s;
    search_opts o = small_opts(SEARCH_RANDOM, 5);
    search_init(&s, &space_nb201, &o);
    run_all(&s, &sy);
    int distinct = 1;
    for (int i = 0; i < s.n; i++)
        for (int j = 0; j < i; j++)
            distinct &= !space_equal(&space_nb201, &s.rec[i].arch, &s.rec[j].arch);
    tap_ok(s.n == 60 && distinct, "random search: budget 60, distinct architectures");
    sarch a;
    search_answer(&s, &a);
    tap_ok(space_equal(&space_nb201, &a, &s.rec[search_best(&s)].arch), "random search answers its best");
    search_free(&s);

    o = small_opts(SEARCH_REA, 5);
    o.budget = 200;
    search_init(&s, &space_nb201, &o);
    run_all(&s, &sy);
    int one_edge = 1, distinct2 = 1;
    for (int i = o.population; i < s.n; i++) {
        /* the child differs from some member of the population in one edge */
        int found = 0;
        for (int j = i - o.population; j < i && !found; j++) {
            int d = 0;
            for (int e = 0; e < NB201_EDGES; e++)
                d += s.rec[i].arch.v[e] != s.rec[j].arch.v[e];
            found = d == 1;
        }
        one_edge &= found;
        for (int j = 0; j < i; j++)
            distinct2 &= !space_equal(&space_nb201, &s.rec[i].arch, &s.rec[j].arch);
    }
    tap_ok(s.n == 200 && one_edge && distinct2, "REA: budget, children one mutation from the population, distinct");
    double first = 0, last = 0;
    for (int i = 0; i < 20; i++) {
        first += s.rec[i].r.score;
        last += s.rec[s.n - 1 - i].r.score;
    }
    tap_ok(last < first, "REA improves: mean score of the last 20 %.3f < first 20 %.3f", last / 20, first / 20);
    search_free(&s);

    o = small_opts(SEARCH_REINFORCE, 5);
    o.budget = 400;
    o.rl_lr = 0.05;
    search_init(&s, &space_nb201, &o);
    run_all(&s, &sy);
    double c_first = 0, c_last = 0;
    for (int i = 0; i < 50; i++) {
        c_first += count_op(&s.rec[i].arch, NB201_CONV3);
        c_last += count_op(&s.rec[s.n - 1 - i].arch, NB201_CONV3);
    }
    tap_ok(s.n == 400 && c_last > c_first + 25,
           "REINFORCE learns: nor_conv_3x3 per cell %.2f in the first 50 samples, %.2f in the last 50",
           c_first / 50, c_last / 50);
    search_free(&s);

    /* constraints: nothing over max_params is ever evaluated */
    int algos[4] = {SEARCH_RMINAS, SEARCH_RANDOM, SEARCH_REA, SEARCH_REINFORCE};
    for (int k = 0; k < 4; k++) {
        o = small_opts(algos[k], 9);
        o.max_params = 2100; /* at most two nor_conv_3x3 (+ one 1x1) */
        search_init(&s, &space_nb201, &o);
        int rc = run_all(&s, &sy), over = 0;
        for (int i = 0; i < s.n; i++) {
            double p, f;
            synth_cost(NULL, &s.rec[i].arch, &p, &f);
            over += p > o.max_params;
        }
        tap_ok(rc == 0 && s.n > 0 && over == 0, "%s with max_params: %d evaluations, none over budget",
               search_algo_names[algos[k]], s.n);
        search_free(&s);
    }
}

static void test_interrupt_and_resume(void)
{
    char path[] = "/tmp/rminas-test-search-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    int algos[4] = {SEARCH_RMINAS, SEARCH_RANDOM, SEARCH_REA, SEARCH_REINFORCE};
    for (int k = 0; k < 4; k++) {
        search_opts o = small_opts(algos[k], 21 + k);
        search ref;
        synth sy = {0, 0};
        search_init(&ref, &space_nb201, &o);
        run_all(&ref, &sy);
        sarch ref_ans;
        search_answer(&ref, &ref_ans);

        /* an interruption on every 7th call changes nothing */
        search s;
        search_init(&s, &space_nb201, &o);
        int ok = 1;
        for (int guard = 0; guard < 100000; guard++) {
            synth si = {0, 1};
            int rc = search_step(&s, synth_eval, synth_cost, &si); /* interrupted at once */
            if (rc == 2)
                break;
            ok &= rc == 1;
            synth sn = {0, 0};
            rc = search_step(&s, synth_eval, synth_cost, &sn);
            if (rc == 2)
                break;
            ok &= rc == 0;
        }
        tap_ok(ok && same_records(&s, &ref), "%s: interrupted evaluations change nothing (%d evaluations)",
               search_algo_names[algos[k]], s.n);
        search_free(&s);

        /* save after evaluation j, load, continue */
        int every = algos[k] == SEARCH_RMINAS ? 13 : 7, all_same = 1, loads = 0;
        search cur;
        search_init(&cur, &space_nb201, &o);
        search_ctx ctx;
        memset(&ctx, 0, sizeof ctx);
        search_ctx_set(&ctx, "evaluator", "synthetic");
        for (int guard = 0; guard < 100000; guard++) {
            int rc = search_step(&cur, synth_eval, synth_cost, &sy);
            if (rc < 0) {
                all_same = 0;
                break;
            }
            if (cur.n % every == 0 || rc == 2) {
                if (search_save(&cur, &ctx, path) < 0) {
                    all_same = 0;
                    break;
                }
                search next;
                search_ctx c2;
                if (search_load(&next, &c2, path) < 0 ||
                    strcmp(search_ctx_get(&c2, "evaluator"), "synthetic")) {
                    all_same = 0;
                    break;
                }
                all_same &= same_records(&next, &cur) && next.phase == cur.phase &&
                            !memcmp(&next.rng, &cur.rng, sizeof cur.rng);
                search_free(&cur);
                cur = next;
                loads++;
            }
            if (rc == 2)
                break;
        }
        sarch ans;
        search_answer(&cur, &ans);
        tap_ok(all_same && loads > 3 && same_records(&cur, &ref) &&
                   space_equal(&space_nb201, &ans, &ref_ans),
               "%s: saved and reloaded %d times, same %d evaluations and answer as uninterrupted",
               search_algo_names[algos[k]], loads, cur.n);
        search_free(&cur);
        search_free(&ref);
    }
    unlink(path);
}

static void write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(text, 1, n, f);
    fclose(f);
}

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    b[*n] = 0;
    fclose(f);
    return b;
}

static void refused(const char *path, const char *what, const char *expect)
{
    search s;
    search_ctx c;
    int rc = search_load(&s, &c, path);
    const char *msg = rm_last_error();
    tap_ok(rc < 0 && strstr(msg, path) && strstr(msg, expect) && search_probe(path) < 0,
           "%s refused: %s", what, msg);
}

static void replace_once(char *buf, const char *from, const char *to)
{
    char *p = strstr(buf, from);
    if (!p)
        return;
    size_t lf = strlen(from), lt = strlen(to);
    memmove(p + lt, p + lf, strlen(p + lf) + 1);
    memcpy(p, to, lt);
}

/* text (n bytes) with from replaced by to, written to bad: refused */
static void refused_edit(const char *text, size_t n, const char *bad, const char *from,
                         const char *to, const char *what, const char *expect)
{
    char *t = malloc(n + strlen(to) + 1);
    memcpy(t, text, n + 1);
    replace_once(t, from, to);
    write_file(bad, t, strlen(t));
    refused(bad, what, expect);
    free(t);
}

static void test_bad_files(void)
{
    char good[] = "/tmp/rminas-test-good-XXXXXX", bad[] = "/tmp/rminas-test-bad-XXXXXX";
    close(mkstemp(good));
    close(mkstemp(bad));
    search s;
    synth sy = {0, 0};
    search_opts o = small_opts(SEARCH_RMINAS, 3);
    search_init(&s, &space_nb201, &o);
    for (int i = 0; i < 45; i++)
        search_step(&s, synth_eval, synth_cost, &sy);
    search_ctx ctx = {0};
    tap_ok(search_save(&s, &ctx, good) == 0 && search_probe(good) == 1, "a saved state probes as a state");
    size_t n;
    char *text = read_all(good, &n);

    write_file(bad, text, n / 2);
    refused(bad, "truncated file", "not an rminas search state");
    write_file(bad, "hello, world\n", 13);
    refused(bad, "text file", "not an rminas search state");
    write_file(bad, "{\"weights\": [1, 2, 3]}\n", 23);
    refused(bad, "foreign JSON", "not an rminas search state");
    write_file(bad, "", 0);
    refused(bad, "empty file", "not an rminas search state");

    refused_edit(text, n, bad, "\"version\": 1", "\"version\": 99",
                 "a newer version", "newer rminas");
    refused_edit(text, n, bad, "\"arch\": \"|", "\"arch\": \"|bogus_op",
                 "a bad architecture in a record", "records[0].arch");
    refused_edit(text, n, bad, "\"algo\": \"rminas\"", "\"algo\": \"gradient\"",
                 "an unknown algorithm", "options.algo");
    refused_edit(text, n, bad, "\"successes\":", "\"successez\":",
                 "a missing field", "successes is missing");
    refused_edit(text, n, bad, "\"score\": ", "\"score\": \"many\", \"x\": ",
                 "a score that is not a number", "records[0].score");
    free(text);

    tap_ok(search_probe("/tmp/rminas-test-no-such-file") == 0, "a missing file probes as 0");
    search s2;
    search_ctx c2;
    tap_ok(search_load(&s2, &c2, good) == 0 && same_records(&s2, &s), "the good file still loads");
    search_free(&s2);

    /* scores made ahead and not taken yet travel with the state */
    ctx.nheld = 2;
    snprintf(ctx.held_sig, sizeof ctx.held_sig, "steps 3 device cpu\n");
    for (int i = 0; i < 2; i++) {
        space_nb201.unindex(100 + 7 * i, &ctx.held[i].arch);
        ctx.held[i].r = (search_eval){.score = 0.25 + i, .cka = {0.5, 0.6, 0.7}, .ce = 2.0,
                                      .seconds = 1.5, .diverged = i};
        ctx.held[i].params = 1000 + i;
        ctx.held[i].macs = 2e6 + i;
    }
    int same = search_save(&s, &ctx, good) == 0 && search_load(&s2, &c2, good) == 0 &&
               same_records(&s2, &s) && c2.nheld == 2 && !strcmp(c2.held_sig, ctx.held_sig);
    for (int i = 0; same && i < 2; i++) {
        const search_held *x = &ctx.held[i], *y = &c2.held[i];
        same = space_equal(&space_nb201, &x->arch, &y->arch) && x->r.score == y->r.score &&
               x->r.cka[2] == y->r.cka[2] && x->r.ce == y->r.ce && x->r.seconds == y->r.seconds &&
               x->r.diverged == y->r.diverged && x->params == y->params && x->macs == y->macs;
    }
    tap_ok(same, "scores made ahead are saved with the state and read back");
    search_free(&s2);
    text = read_all(good, &n);
    refused_edit(text, n, bad, "\"score\": 1.25", "\"score\": \"nan\"",
                 "a score ahead that is NaN", "ahead.evaluations[1].score is NaN");
    free(text);
    search_free(&s);
    unlink(good);
    unlink(bad);
}

/* Both spaces: string round trip, sampling, mutation, encoding; the chain
 * network's feature shapes; malformed chain strings. */
static void test_spaces(void)
{
    const space *sps[3] = {&space_nb201, &space_chain, &space_darts};
    for (int k = 0; k < 3; k++) {
        const space *sp = sps[k];
        rng r;
        rng_seed(&r, 99);
        int round = 1, enc = 1, mut = 1, distinct = 0;
        sarch prev;
        memset(&prev, 0, sizeof prev);
        for (int i = 0; i < 500; i++) {
            sarch a, b, c;
            sp->sample(&r, &a);
            char str[SPACE_STRLEN];
            sp->format(&a, str, sizeof str);
            round &= sp->parse(str, &b) == 0 && space_equal(sp, &a, &b);
            double x[SPACE_MAXPOS * SPACE_MAXCHOICE], sum = 0;
            space_encode(sp, &a, x);
            for (int j = 0; j < sp->npos * sp->nchoice; j++)
                sum += x[j];
            enc &= sum == sp->npos;
            space_mutate(sp, &r, &a, &c);
            int d = 0;
            for (int j = 0; j < sp->npos; j++)
                d += a.v[j] != c.v[j];
            /* DARTS moves a kept edge to another input: two positions */
            mut &= (d == 1 || (sp == &space_darts && d == 2)) &&
                   (!sp->valid || (sp->valid(&a) && sp->valid(&c)));
            distinct += !space_equal(sp, &a, &prev);
            prev = a;
        }
        tap_ok(round && enc && mut && distinct > 490,
               "%s: 500 valid samples print and parse back, encode to %d ones, mutate to a "
               "valid neighbour", sp->name, sp->npos);
    }
    sarch a;
    tap_ok(space_chain.parse("k3e3-skip-k5e6-k7e3|k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3-skip", &a) == 0 &&
               a.v[0] == 1 && a.v[1] == 0 && a.v[4] == 2 && a.v[11] == 0,
           "chain string parses to the right blocks");
    const char *bad[3] = {"k3e3-skip-k5e6-k7e3|k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3",
                          "k3e3-skip-k5e6-k7e3-k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3-skip-skip",
                          "k3e3-skip-k9e6-k7e3|k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3-skip"};
    const char *why[3] = {"ends early at offset 54: 11 of 12 layers", "expected '|'", "unknown block 'k9e6'"};
    for (int i = 0; i < 3; i++)
        tap_ok(space_chain.parse(bad[i], &a) < 0 && strstr(rm_last_error(), why[i]),
               "bad chain string refused: %s", rm_last_error());
    model m;
    space_chain.parse("k3e3-skip-k5e6-k7e3|k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3-skip", &a);
    int ok = space_chain.build(&m, backend_cpu(), &a, 10, 32) == 0;
    int want[3][3] = {{16, 32, 32}, {32, 16, 16}, {64, 8, 8}};
    for (int f = 0; ok && f < 3; f++) {
        int c, h, w;
        graph_value_shape(m.g, m.feat[f], &c, &h, &w);
        ok &= c == want[f][0] && h == want[f][1] && w == want[f][2];
    }
    int c, h, w;
    if (ok)
        graph_value_shape(m.g, m.logits, &c, &h, &w);
    tap_ok(ok && c == 10, "chain network: features 16x32x32, 32x16x16, 64x8x8, 10 logits (%zu parameters)",
           ok ? graph_count_trainable(m.g) : 0);
    if (ok)
        model_free(&m);
    search s;
    search_opts o = small_opts(SEARCH_RMINAS, 1);
    synth sy = {0, 0};
    int run = search_init(&s, &space_chain, &o) == 0 && run_all(&s, &sy) == 0;
    tap_ok(run && s.n > o.n_warm && s.successes == o.n_collect,
           "rminas runs in the chain space (%d evaluations, %d successes)", s.n, s.successes);
    search_free(&s);
}

/* The DARTS space: DARTS's genotype strings, uniform sampling, the vote,
 * bad strings, the network's shapes and parameter count (PyTorch's). */
static void test_darts(void)
{
    /* DARTS_V2's normal cell as DARTS prints it (node 4 lists input 1 first) */
    const char *v2 = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                     "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), "
                     "('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                     "normal_concat=range(2, 6))";
    sarch a, b;
    int ok = space_darts.parse(v2, &a) == 0;
    /* edges: node 2 {0,1}, node 3 {2,3,4}, node 4 {5..8}, node 5 {9..13} */
    const uint8_t want[DARTS_EDGES] = {4, 4, 4, 4, 0, 3, 4, 0, 0, 3, 0, 6, 0, 0};
    tap_ok(ok && !memcmp(a.v, want, DARTS_EDGES), "darts: DARTS_V2's genotype parses to its edges");
    char str[SPACE_STRLEN];
    space_darts.format(&a, str, sizeof str);
    tap_ok(!strcmp(str, "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                         "('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
                         "('sep_conv_3x3', 1), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                         "normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_3x3', 0), "
                         "('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                         "('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
                         "('dil_conv_3x3', 2)], reduce_concat=[2, 3, 4, 5])"),
           "darts: printed as DARTS's Genotype, inputs ascending, reduce = normal");
    /* the shell strips quotes: the bare form parses too */
    tap_ok(space_darts.parse("Genotype(normal=[(sep_conv_3x3, 0), (sep_conv_3x3, 1), "
                             "(sep_conv_3x3, 0), (sep_conv_3x3, 1), (sep_conv_3x3, 1), "
                             "(skip_connect, 0), (skip_connect, 0), (dil_conv_3x3, 2)])",
                             &b) == 0 && space_equal(&space_darts, &a, &b),
           "darts: the unquoted form parses to the same cell");
    const char *bad[7] = {
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_7x7', 1)])",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 2)])",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 0)])",
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)])",
        "Genotype(normal=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('max_pool_3x3', 1)], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), "
        "('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), "
        "('max_pool_3x3', 0), ('avg_pool_3x3', 1)])",
        "Genotype(normal=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
        "('max_pool_3x3', 1)], normal_concat=[2, 3, 4])",
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"};
    const char *why[7] = {"unknown operation 'sep_conv_7x7'", "node 2 can take input 0..1, not 2",
                          "node 2 takes input 0 twice", "expected ',' in normal at offset 57",
                          "reduce differs from normal", "expected ',' in normal_concat",
                          "expected 'Genotype'"};
    for (int i = 0; i < 7; i++)
        tap_ok(space_darts.parse(bad[i], &b) < 0 && strstr(rm_last_error(), why[i]),
               "bad genotype refused: %s", rm_last_error());

    /* uniform sampling: every node's input pairs and every operation equally often */
    rng r;
    rng_seed(&r, 5);
    int pairs[10] = {0}, ops[DARTS_NOPS + 1] = {0}, valid = 1;
    const int n = 14000;
    for (int i = 0; i < n; i++) {
        space_darts.sample(&r, &b);
        valid &= space_darts.valid(&b);
        int k1 = -1, k2 = -1;
        for (int k = 0; k < 5; k++)
            if (b.v[darts_edge(3, k)])
                k1 < 0 ? (k1 = k) : (k2 = k);
        pairs[k1 * (9 - k1) / 2 + k2 - k1 - 1]++; /* the 10 pairs of 5 inputs */
        for (int e = 0; e < DARTS_EDGES; e++)
            ops[b.v[e]]++;
    }
    double worst = 0;
    for (int k = 0; k < 10; k++)
        worst = fmax(worst, fabs(pairs[k] / (n / 10.) - 1));
    for (int k = 1; k <= DARTS_NOPS; k++)
        worst = fmax(worst, fabs(ops[k] / (n * 8. / DARTS_NOPS) - 1));
    tap_ok(valid && ops[0] == n * 6 && worst < 0.08,
           "darts: %d samples valid, node 5's 10 input pairs and the 7 operations uniform "
           "(worst relative deviation %.3f)", n, worst);

    /* the vote: inputs kept most often, then each kept edge's most frequent operation */
    sarch v[3];
    const char *g3[3] = {
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
        "('max_pool_3x3', 2), ('avg_pool_3x3', 2), ('dil_conv_3x3', 3), ('sep_conv_5x5', 0), "
        "('skip_connect', 4)])",
        "Genotype(normal=[('dil_conv_5x5', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
        "('avg_pool_3x3', 2), ('avg_pool_3x3', 2), ('dil_conv_3x3', 3), ('sep_conv_5x5', 1), "
        "('skip_connect', 4)])",
        "Genotype(normal=[('dil_conv_5x5', 0), ('skip_connect', 1), ('skip_connect', 1), "
        "('max_pool_3x3', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_5x5', 2), "
        "('skip_connect', 3)])"};
    ok = 1;
    for (int i = 0; i < 3; i++)
        ok &= space_darts.parse(g3[i], &v[i]) == 0;
    space_select(&space_darts, v, 3, &b);
    space_darts.format(&b, str, sizeof str);
    /* node 2: inputs 0 (dil_conv_5x5 2:1), 1 (sep_conv_3x3 2:1); node 3: inputs 2 (3 votes,
     * max_pool 2:1) and 0 (2 votes, skip); node 4: 2 (avg 2) and 3 (dil_conv_3x3 2), inputs
     * 0 and 1 (1 vote each) lose; node 5: 4 (skip 2), then 0..3 tie at 1 vote: input 0 */
    tap_ok(ok && space_darts.valid(&b) &&
               strstr(str, "normal=[('dil_conv_5x5', 0), ('sep_conv_3x3', 1), "
                           "('skip_connect', 0), ('max_pool_3x3', 2), ('avg_pool_3x3', 2), "
                           "('dil_conv_3x3', 3), ('sep_conv_5x5', 0), ('skip_connect', 4)]"),
           "darts: the vote of 3 hand-made cells (%s)", str);
    int allvalid = 1;
    for (int t = 0; t < 200; t++) {
        sarch many[7];
        for (int i = 0; i < 7; i++)
            space_darts.sample(&r, &many[i]);
        space_select(&space_darts, many, 1 + t % 7, &b);
        allvalid &= space_darts.valid(&b);
    }
    tap_ok(allvalid, "darts: the vote of 1..7 random cells is always a valid cell");

    /* the network: C = 16, 8 cells; PyTorch's parameter count (tests/golden/make_golden.py's
     * DartsNetwork) for DARTS_V2's cell */
    model m;
    space_darts.parse(v2, &a);
    ok = space_darts.build(&m, backend_cpu(), &a, 10, 32) == 0;
    int wantf[3][3] = {{64, 32, 32}, {128, 16, 16}, {256, 8, 8}};
    for (int f = 0; ok && f < 3; f++) {
        int c, h, w;
        graph_value_shape(m.g, m.feat[f], &c, &h, &w);
        ok &= c == wantf[f][0] && h == wantf[f][1] && w == wantf[f][2];
    }
    size_t np = ok ? graph_count_trainable(m.g) : 0;
    tap_ok(ok && np == 324666,
           "darts network: features 64x32x32, 128x16x16, 256x8x8 after cells 1, 4, 7; "
           "%zu parameters (PyTorch: 324666)", np);
    if (ok)
        model_free(&m);
    search s;
    search_opts o = small_opts(SEARCH_RMINAS, 2);
    synth sy = {0, 0};
    int run = search_init(&s, &space_darts, &o) == 0 && run_all(&s, &sy) == 0;
    sarch ans;
    run = run && search_answer(&s, &ans) == 0;
    tap_ok(run && s.n > o.n_warm && s.successes == o.n_collect && space_darts.valid(&ans),
           "rminas runs in the darts space (%d evaluations, %d successes, a valid answer)", s.n,
           s.successes);
    search_free(&s);
}

/* the simulated time of scoring a (rounds and the pool below) */
static double pool_time(const sarch *a)
{
    return 1 + count_op(a, NB201_CONV3);
}

/* RMI-NAS's expanded phase scored ahead (search_ahead), as the session
 * does with jobs: each round the search takes the speculated picks for as
 * long as its next pick is among them. Returns the rounds; *same: the
 * search made the evaluations of one made one at a time; *first: each
 * round's picks were distinct, the next evaluation first. */
static int speculated_rounds(uint64_t seed, int k, int *expanded, int *same, int *first,
                             double *time)
{
    search s, ref;
    synth sy = {0, 0};
    search_opts o = small_opts(SEARCH_RMINAS, seed);
    o.n_collect = 40;
    search_init(&s, &space_nb201, &o);
    search_init(&ref, &space_nb201, &o);
    run_all(&ref, &sy);
    while (s.phase == PHASE_WARMUP)
        search_step(&s, synth_eval, synth_cost, &sy);
    const int n0 = s.n;
    int rounds = 0, ok = 1;
    sarch set[16], next;
    while (ok && s.phase == PHASE_EXPAND) {
        int m = search_ahead(&s, k, 64, set, synth_cost, NULL, &sy);
        if (m < 1) {
            ok = search_step(&s, synth_eval, synth_cost, &sy) == 2;
            break;
        }
        rounds++;
        double slowest = 0;
        for (int i = 0; i < m; i++)
            slowest = fmax(slowest, pool_time(&set[i]));
        *time += slowest;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < i; j++)
                *first &= !space_equal(&space_nb201, &set[i], &set[j]);
        int taken = 0;
        while (search_ahead(&s, 1, 1, &next, synth_cost, NULL, &sy) == 1) {
            int in = 0;
            for (int i = 0; i < m; i++)
                in |= space_equal(&space_nb201, &set[i], &next);
            if (!in)
                break;
            *first &= taken || space_equal(&space_nb201, &set[0], &next);
            ok = search_step(&s, synth_eval, synth_cost, &sy) >= 0;
            taken++;
        }
        ok &= taken > 0;
    }
    *same &= ok && same_records(&s, &ref);
    *expanded += s.n - n0;
    search_free(&s);
    search_free(&ref);
    return rounds;
}

/* The synthetic scores are easy to predict (the forest is sure of most
 * picks), so the likeliest paths go deep: over these four searches, 8
 * picks a round took 53 rounds for 212 evaluations breadth first (the
 * order before: 3 levels, with picks repeated under both outcomes), 46
 * the likeliest first. */
static void test_speculation(void)
{
    int same = 1, first = 1, expanded = 0, rounds = 0;
    double time = 0;
    for (uint64_t seed = 1; seed <= 4; seed++)
        rounds += speculated_rounds(seed, 8, &expanded, &same, &first, &time);
    tap_ok(same, "speculated rounds: the evaluations of the search scored one at a time");
    tap_ok(first, "each round's picks are distinct, the next evaluation first");
    const double per = (double)expanded / rounds;
    tap_ok(per > 4.3, "8 picks a round, the likeliest paths first: %d evaluations in %d rounds "
                      "(%.2f a round; breadth first: 4.00)", expanded, rounds, per);
}

/* ---- a pool of jobs (search_plan), simulated: an architecture takes
 * 1 + (its 3x3 convolutions) time units; a job that finishes gets the
 * next one at once ---- */
enum { POOL_MAX = 512 };
typedef struct pool_sim {
    sarch known[POOL_MAX]; /* scored, maybe not taken yet */
    int nknown;
    int bad;               /* a plan broke its contract */
} pool_sim;

static int pool_find(const sarch *set, int n, const sarch *a)
{
    for (int i = 0; i < n; i++)
        if (space_equal(&space_nb201, &set[i], a))
            return i;
    return -1;
}

static int pool_known(void *user, const sarch *a, search_eval *out)
{
    const pool_sim *p = user;
    if (pool_find(p->known, p->nknown, a) < 0)
        return 0;
    synth sy = {0, 0};
    return synth_eval(&sy, a, out) == 0;
}

/* RMI-NAS to its end with `jobs` jobs; the simulated time of its expanded
 * phase, -1 on an error */
static double pool_run(search *s, int jobs, pool_sim *p)
{
    sarch busy[16], start[16];
    double end[16], now = 0, t0 = -1;
    int nbusy = 0;
    synth sy = {0, 0};
    for (int guard = 0; guard < 100000 && s->phase != PHASE_DONE && !p->bad; guard++) {
        int nstart, stop;
        if (t0 < 0 && s->phase == PHASE_EXPAND)
            t0 = now;
        const int plan = search_plan(s, jobs, 64, busy, nbusy, jobs - nbusy, synth_cost,
                                     pool_known, p, start, &nstart, &stop);
        if (plan < 0)
            return -1;
        if (plan != SEARCH_WAIT) {
            if (plan == SEARCH_ALONE) {
                nbusy = 0;
                sarch next;
                if (search_ahead(s, 1, 1, &next, synth_cost, NULL, p) == 1)
                    now += pool_time(&next);
            }
            if (search_step(s, synth_eval, synth_cost, &sy) < 0)
                return -1;
            continue;
        }
        p->bad |= nstart > jobs - nbusy;
        for (int i = 0; i < nstart; i++) {
            /* neither running nor known, nor twice */
            p->bad |= pool_find(busy, nbusy, &start[i]) >= 0 ||
                      pool_find(p->known, p->nknown, &start[i]) >= 0;
            busy[nbusy] = start[i];
            end[nbusy++] = now + pool_time(&start[i]);
        }
        if (stop >= 0) {
            busy[stop] = busy[--nbusy];
            end[stop] = end[nbusy];
            continue;
        }
        if (!nbusy || p->nknown + nbusy > POOL_MAX)
            return -1;
        double t = end[0];
        for (int j = 1; j < nbusy; j++)
            t = fmin(t, end[j]);
        now = t;
        for (int j = 0; j < nbusy;)
            if (end[j] <= t) {
                p->known[p->nknown++] = busy[j];
                busy[j] = busy[--nbusy];
                end[j] = end[nbusy];
            } else {
                j++;
            }
    }
    return s->phase == PHASE_DONE && t0 >= 0 ? now - t0 : -1;
}

/* A score already in is followed as if the search had taken it: the
 * speculation from before it, told its score, picks what the search picks
 * after taking it. Then a simulated pool of 8 jobs makes the search's own
 * evaluations, in less time than rounds of 8 (each waiting for its
 * slowest, as counted above: see the message), over the same four
 * searches. */
static void test_pool(void)
{
    search a, b;
    synth sy = {0, 0};
    search_opts o = small_opts(SEARCH_RMINAS, 3);
    o.n_collect = 40;
    search_init(&a, &space_nb201, &o);
    search_init(&b, &space_nb201, &o);
    while (a.phase == PHASE_WARMUP) {
        search_step(&a, synth_eval, synth_cost, &sy);
        search_step(&b, synth_eval, synth_cost, &sy);
    }
    sarch first, pa[8], pb[8];
    pool_sim *p = calloc(1, sizeof *p);
    int ok = p && search_ahead(&a, 1, 1, &first, synth_cost, NULL, p) == 1;
    if (ok) {
        p->known[p->nknown++] = first;
        search_step(&b, synth_eval, synth_cost, &sy); /* b takes it */
    }
    int na = ok ? search_ahead(&a, 8, 64, pa, synth_cost, pool_known, p) : -1;
    int nb = ok ? search_ahead(&b, 8, 64, pb, synth_cost, NULL, p) : -2;
    int same = ok && na == nb && na > 1;
    for (int i = 0; same && i < na; i++)
        same = space_equal(&space_nb201, &pa[i], &pb[i]);
    tap_ok(same, "a score already in is followed: the picks of the search that took it (%d, %d)",
           na, nb);
    /* the same speculation again, and the search taking its picks, fit no
     * forest: the picks are remembered by state */
    const long fits = search_forest_fits(&a);
    int again = ok && search_ahead(&a, 8, 64, pa, synth_cost, pool_known, p) == na;
    for (int i = 0; again && i < na; i++)
        again = space_equal(&space_nb201, &pa[i], &pb[i]);
    const long fits_again = search_forest_fits(&a);
    for (int i = 0; i < 3 && ok; i++)
        search_step(&a, synth_eval, synth_cost, &sy);
    tap_ok(again && fits > na && fits_again == fits && search_forest_fits(&a) == fits,
           "picks are remembered: %ld forest fits for the speculation, none for it again or for "
           "the search's next 3 picks", fits);
    search_free(&a);
    search_free(&b);

    int all_same = 1;
    double t_pool = 0, t_rounds = 0;
    for (uint64_t seed = 1; seed <= 4 && p; seed++) {
        search s, ref;
        o = small_opts(SEARCH_RMINAS, seed);
        o.n_collect = 40;
        search_init(&s, &space_nb201, &o);
        search_init(&ref, &space_nb201, &o);
        synth r = {0, 0};
        run_all(&ref, &r);
        memset(p, 0, sizeof *p);
        const double t = pool_run(&s, 8, p);
        all_same &= t >= 0 && !p->bad && same_records(&s, &ref);
        t_pool += t;
        search_free(&s);
        search_free(&ref);
        int e = 0, sm = 1, fi = 1;
        double tr = 0;
        speculated_rounds(seed, 8, &e, &sm, &fi, &tr);
        t_rounds += tr;
    }
    tap_ok(all_same, "a pool of 8 jobs: the evaluations of the search one at a time, no "
                     "architecture started twice or while known");
    tap_ok(t_pool < t_rounds, "a pool of 8 jobs: the expanded phases in %.0f time units, rounds "
                              "of 8 in %.0f", t_pool, t_rounds);
    free(p);
}

int main(void)
{
    tap_plan(81);
    test_helpers();
    test_rminas();
    test_baselines();
    test_interrupt_and_resume();
    test_bad_files();
    test_spaces();
    test_darts();
    test_speculation();
    test_pool();
    return tap_done();
}
