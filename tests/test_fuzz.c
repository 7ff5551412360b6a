/* Fuzzing what rminas reads from outside (TAP): architecture strings of
 * the three spaces, safetensors files, benchmark tables, search states.
 * Each target starts from valid inputs made here (seeds) and runs
 * FUZZ_ITER (default 3000) inputs made from them by 1-6 random edits each
 * (bit flips, bytes set, inserted, deleted, duplicated, truncations, the
 * format's own tokens spliced in), from a fixed seed (FUZZ_SEED), so a
 * failure repeats. Every input must be taken or refused with a message,
 * never crash, and what is taken must hold together:
 *   - a parsed architecture prints as a string that parses to the same
 *     architecture and prints the same again (round trip exact);
 *   - a loaded safetensors file has every tensor inside its data, readable
 *     by name; a refusal names the file;
 *   - a loaded benchmark table has finite row and column counts and rows
 *     found by their architectures; a refusal names the file;
 *   - a loaded search state saves and loads again to the same search; a
 *     refusal names the file and leaves the caller's search untouched;
 *   - a search state loaded by a session (its settings applied, its
 *     benchmark table looked for) is refused with a message and every
 *     setting and the session's search as they were, or leaves a search;
 *   - a score log's rows are taken with a score that is not NaN, counts
 *     that are not negative, each found by its architecture; a refusal
 *     names the file.
 * Each input is written to $TMPDIR/rminas-fuzz-PID/TARGET.in before it is
 * tried, so after a crash that file holds it. For a run under AddressSanitizer
 * see doc/fuzzing.md. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/bench.h"
#include "io/safetensors.h"
#include "search/search.h"
#include "session/session.h"
#include "space/space.h"
#include "tap.h"
#include "util/err.h"
#include "util/rng.h"

enum { MAXSEEDS = 8, MAXIN = 1 << 16 };

typedef struct buf {
    unsigned char *p;
    size_t n;
} buf;

typedef struct target {
    const char *name;
    buf seed[MAXSEEDS];
    int nseed;
    const char *const *tokens; /* spliced in by the edits */
    /* 0: taken and consistent, 1: refused with a message, -1: broken (why in
     * rm_last_error) */
    int (*run)(const struct target *t, const unsigned char *in, size_t n);
    const space *sp; /* architecture targets */
} target;

static char dir[512];
static char inpath[640];
static rng R;

static void add_seed(target *t, const void *p, size_t n)
{
    if (t->nseed == MAXSEEDS)
        return;
    buf *b = &t->seed[t->nseed++];
    b->p = malloc(n ? n : 1);
    memcpy(b->p, p, n);
    b->n = n;
}

static int add_seed_file(target *t, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    unsigned char *p = malloc(MAXIN);
    size_t n = fread(p, 1, MAXIN, f);
    fclose(f);
    add_seed(t, p, n);
    free(p);
    return 0;
}

static int write_input(const unsigned char *in, size_t n)
{
    FILE *f = fopen(inpath, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(in, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* a refusal's message must say something and, for a file, name it */
static int refused(int names_file)
{
    const char *e = rm_last_error();
    if (!e[0])
        return rm_error("refused without a message");
    if (names_file && !strstr(e, inpath))
        return rm_error("the refusal does not name the file: %s", e);
    return 1;
}

/* ---- architecture strings ---- */

static int run_arch(const target *t, const unsigned char *in, size_t n)
{
    char s[SPACE_STRLEN + 64], out1[SPACE_STRLEN], out2[SPACE_STRLEN];
    if (n >= sizeof s)
        n = sizeof s - 1;
    memcpy(s, in, n);
    s[n] = 0;
    sarch a, b;
    memset(&a, 0xa5, sizeof a);
    rm_clear_error();
    if (t->sp->parse(s, &a) < 0)
        return refused(0);
    if (t->sp->valid && !t->sp->valid(&a))
        return rm_error("parsed an invalid architecture from '%s'", s);
    t->sp->format(&a, out1, sizeof out1);
    if (t->sp->parse(out1, &b) < 0)
        return rm_error("'%s' parsed, but its printed form '%s' does not: %s", s, out1,
                        rm_last_error());
    if (!space_equal(t->sp, &a, &b))
        return rm_error("'%s' and its printed form '%s' parse to different architectures", s,
                        out1);
    t->sp->format(&b, out2, sizeof out2);
    if (strcmp(out1, out2))
        return rm_error("printed forms differ: '%s' then '%s'", out1, out2);
    if (t->sp->index && t->sp->count) {
        const int i = t->sp->index(&a);
        sarch c;
        t->sp->unindex(i, &c);
        if (i < 0 || i >= t->sp->count || !space_equal(t->sp, &a, &c))
            return rm_error("'%s': index %d does not come back", out1, i);
    }
    return 0;
}

static const char *const nb201_tokens[] = {
    "|", "~", "+", "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3",
    "~0", "~1", "~2", "~3", "~-1", "~99999999999", "|+|", " ", "\t", "\n", "", NULL};
static const char *const darts_tokens[] = {
    "Genotype(", "normal=[", "reduce=[", "normal_concat=", "reduce_concat=", "range(2, 6)",
    "('sep_conv_3x3', 0)", "('max_pool_3x3', 1)", "('skip_connect', 2)", "('dil_conv_5x5', 3)",
    "('none', 0)", "'", "(", ")", "[", "]", ",", " ", "0", "1", "4", "-1", "99", NULL};
static const char *const chain_tokens[] = {"|", "-", "skip", "k3e3", "k5e6", "k7e3", "k3",
                                           "e6", "k9e9", " ", "0", NULL};

static void arch_seeds(target *t)
{
    rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < 4; i++) {
        sarch a;
        char s[SPACE_STRLEN];
        t->sp->sample(&r, &a);
        t->sp->format(&a, s, sizeof s);
        add_seed(t, s, strlen(s));
    }
}

/* ---- safetensors ---- */

/* the file targets read the input from inpath (try_input wrote it) */
static int run_st(const target *t, const unsigned char *in, size_t n)
{
    (void)t, (void)in;
    st_file f;
    memset(&f, 0x5a, sizeof f);
    rm_clear_error();
    if (st_load(inpath, &f) < 0) {
        if (f.n || f.t || f.nmeta)
            return rm_error("a refused file left tensors or metadata behind");
        return refused(1);
    }
    int rc = 0;
    for (int i = 0; i < f.n && !rc; i++) {
        const st_tensor *x = &f.t[i];
        const int64_t numel = st_numel(x);
        if (numel < 0 || (size_t)numel * st_dtype_size(x->dtype) != x->nbytes)
            rc = rm_error("tensor %s: %zu bytes for %lld elements", x->name, x->nbytes,
                          (long long)numel);
        else if (x->nbytes > n)
            rc = rm_error("tensor %s: %zu bytes in a file of %zu", x->name, x->nbytes, n);
        else if (st_find(&f, x->name) != x)
            rc = rm_error("tensor %s is not found by its name", x->name);
        else if (numel <= 4096) {
            float v[4096];
            if (st_read_f32(&f, x->name, v, numel) < 0)
                rc = rm_error("tensor %s does not read as float: %s", x->name, rm_last_error());
        }
    }
    for (int i = 0; i < f.nmeta && !rc; i++)
        if (!f.meta_key[i] || !f.meta_val[i])
            rc = rm_error("metadata entry %d is missing", i);
    st_free(&f);
    return rc;
}

static const char *const st_tokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"",
    "\"F32\"", "\"F64\"", "\"F16\"", "\"I64\"", "\"I32\"", "\"U8\"", "\"BF16\"",
    "\"__metadata__\"", "0", "1", "-1", "4294967296", "18446744073709551615", "1e400",
    "9223372036854775807", "null", "true", " ", "\\u0000", NULL};

static int st_seeds(target *t)
{
    float a[6] = {1, -2, 3.5f, 0, 1e-3f, 7};
    int64_t b[4] = {1, 2, 3, -4};
    uint16_t h = 0x3c00; /* 1.0 */
    st_tensor ts[3] = {
        {.name = "layer.weight", .dtype = ST_F32, .ndim = 2, .shape = {2, 3},
         .nbytes = sizeof a, .data = a},
        {.name = "layer.num_batches_tracked", .dtype = ST_I64, .ndim = 1, .shape = {4},
         .nbytes = sizeof b, .data = b},
        {.name = "scale", .dtype = ST_F16, .ndim = 0, .nbytes = sizeof h, .data = &h},
    };
    const char *mk[] = {"arch", "format"}, *mv[] = {"resnet20", "pt"};
    char path[700];
    snprintf(path, sizeof path, "%s/seed.safetensors", dir);
    if (st_save(path, ts, 3, mk, mv, 2) < 0 || add_seed_file(t, path) < 0)
        return -1;
    if (st_save(path, ts, 1, NULL, NULL, 0) < 0 || add_seed_file(t, path) < 0)
        return -1;
    return 0;
}

/* ---- benchmark tables ---- */

static int run_bench(const target *t, const unsigned char *in, size_t n)
{
    (void)t, (void)in, (void)n;
    bench_table b;
    memset(&b, 0, sizeof b);
    rm_clear_error();
    if (bench_load(inpath, &b) < 0) {
        bench_free(&b);
        return refused(1);
    }
    int rc = 0;
    if (b.nrows < 0 || b.ncols < 0 || b.nrows > NB201_COUNT)
        rc = rm_error("%d rows, %d columns", b.nrows, b.ncols);
    for (int c = 0; c < b.ncols && !rc; c++)
        if (!b.colname[c] || bench_column(&b, b.colname[c]) < 0)
            rc = rm_error("column %d is not found by its name", c);
    int found = 0;
    for (int i = 0; i < NB201_COUNT && !rc; i++) {
        sarch a;
        space_nb201.unindex(i, &a);
        nb201_arch na = sarch_to_nb201(&a);
        const int row = bench_row(&b, &na);
        if (row < -1 || row >= b.nrows)
            rc = rm_error("architecture %d: row %d of %d", i, row, b.nrows);
        found += row >= 0;
        for (int c = 0; row >= 0 && c < b.ncols; c++)
            (void)bench_value(&b, row, c);
    }
    if (!rc && found != b.nrows)
        rc = rm_error("%d rows, %d found by their architectures", b.nrows, found);
    bench_free(&b);
    return rc;
}

static const char *const bench_tokens[] = {
    ",", "\n", "\r\n", "\"", "arch", "index", "cifar10_test", "nan", "inf", "-inf", "1e999",
    "93.5", "", " ", "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "\xff\xfe", NULL};

static void bench_seeds(target *t)
{
    const char *s1 =
        "arch,index,cifar10_valid,cifar10_test\n"
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|,1,89.5,93.1\n"
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|,2,85.0,88.25\n"
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,3,10,10\n";
    const char *s2 = "\"arch\",\"cifar10_test\"\n"
                     "\"|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|"
                     "skip_connect~1|skip_connect~2|\",\n";
    add_seed(t, s1, strlen(s1));
    add_seed(t, s2, strlen(s2));
}

/* ---- search states ---- */

static int toy_eval(void *user, const sarch *a, search_eval *out)
{
    (void)user;
    memset(out, 0, sizeof *out);
    out->score = (double)(space_key(&space_nb201, a) % 1000) / 1000.0;
    out->cka[0] = out->cka[1] = out->cka[2] = out->ce = NAN;
    out->seconds = 0.25;
    return 0;
}

static int same_search(const search *a, const search *b)
{
    if (a->sp != b->sp || a->n != b->n || a->phase != b->phase || a->o.algo != b->o.algo ||
        a->successes != b->successes || a->iteration != b->iteration ||
        a->have_pending != b->have_pending || memcmp(&a->rng, &b->rng, sizeof a->rng))
        return 0;
    if (!(a->tau == b->tau || (isnan(a->tau) && isnan(b->tau))))
        return 0;
    for (int i = 0; i < a->n; i++) {
        const search_record *x = &a->rec[i], *y = &b->rec[i];
        if (!space_equal(a->sp, &x->arch, &y->arch) || x->phase != y->phase ||
            x->good != y->good ||
            !(x->r.score == y->r.score || (isnan(x->r.score) && isnan(y->r.score))))
            return 0;
    }
    return 1;
}

static search_ctx ctx1, ctx2;

/* the scores made ahead that two states hold */
static int same_held(const search_ctx *a, const search_ctx *b, const space *sp)
{
    if (a->nheld != b->nheld || strcmp(a->held_sig, b->held_sig))
        return 0;
    for (int i = 0; i < a->nheld; i++) {
        const search_held *x = &a->held[i], *y = &b->held[i];
        if (!space_equal(sp, &x->arch, &y->arch) || x->r.score != y->r.score ||
            x->r.diverged != y->r.diverged)
            return 0;
    }
    return 1;
}

static int run_state(const target *t, const unsigned char *in, size_t n)
{
    (void)t, (void)in, (void)n;
    search s, keep;
    memset(&s, 0x3c, sizeof s);
    keep = s;
    rm_clear_error();
    if (search_load(&s, &ctx1, inpath) < 0) {
        if (memcmp(&s, &keep, sizeof s))
            return rm_error("a refused state changed the caller's search");
        return refused(1);
    }
    int rc = 0;
    char again[700];
    snprintf(again, sizeof again, "%s/again.json", dir);
    search u;
    if (s.n < 0 || (s.n && !s.rec))
        rc = rm_error("%d records", s.n);
    else if (search_save(&s, &ctx1, again) < 0)
        rc = rm_error("a loaded state does not save: %s", rm_last_error());
    else if (search_load(&u, &ctx2, again) < 0)
        rc = rm_error("a loaded state, saved again, does not load: %s", rm_last_error());
    else {
        if (!same_search(&s, &u))
            rc = rm_error("a loaded state, saved and loaded again, is another search");
        else if (!same_held(&ctx1, &ctx2, s.sp))
            rc = rm_error("a loaded state's scores ahead, saved and loaded again, differ");
        search_free(&u);
    }
    search_free(&s);
    return rc;
}

static const char *const state_tokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\"version\"", "\"space\"", "\"nb201\"", "\"darts\"",
    "\"algo\"", "\"rminas\"", "\"rea\"", "\"phase\"", "\"records\"", "\"arch\"", "\"score\"",
    "\"nan\"", "\"inf\"", "\"-inf\"", "0", "1", "-1", "2147483648", "1e308", "null", "true",
    "false", "\"0x\"", "\"0xffffffffffffffff\"", " ", "\"ahead\"", "\"evaluations\"",
    "\"settings\"", NULL};

static int state_seeds(target *t)
{
    char path[700];
    snprintf(path, sizeof path, "%s/seed.json", dir);
    const int algos[2] = {SEARCH_RMINAS, SEARCH_REA};
    for (int k = 0; k < 2; k++) {
        search s;
        search_opts o;
        search_opts_default(&o);
        o.algo = algos[k];
        o.seed = 3;
        o.n_warm = 4;
        o.n_collect = 2;
        o.n_fitting = 20;
        o.trees = 3;
        o.budget = 6;
        o.population = 3;
        o.sample_size = 2;
        if (search_init(&s, &space_nb201, &o) < 0)
            return -1;
        for (int i = 0; i < 6 && s.phase != PHASE_DONE; i++)
            if (search_step(&s, toy_eval, NULL, NULL) < 0)
                return -1;
        s.t_warm = s.t_forest = s.t_eval = 0; /* the same seed in every run */
        memset(&ctx1, 0, sizeof ctx1);
        search_ctx_set(&ctx1, "evaluator", "rmi");
        search_ctx_set(&ctx1, "steps", "150");
        if (k == 0) { /* two scores made ahead, not taken yet */
            snprintf(ctx1.held_sig, sizeof ctx1.held_sig, "steps 150 device cpu\n");
            for (int i = 0; i < 2; i++) {
                ctx1.nheld++;
                space_nb201.unindex(4000 + 31 * i, &ctx1.held[i].arch);
                toy_eval(NULL, &ctx1.held[i].arch, &ctx1.held[i].r);
                ctx1.held[i].params = 1e5 + i;
                ctx1.held[i].macs = 2e7;
            }
        }
        const int rc = search_save(&s, &ctx1, path);
        search_free(&s);
        if (rc < 0 || add_seed_file(t, path) < 0)
            return -1;
    }
    return 0;
}

/* ---- search states loaded by a session (their settings applied) ---- */

static session S;

/* every setting's value, as `show settings` prints them */
static void settings_text(char *out, size_t size)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < session_nsettings && k < size; i++) {
        char v[1100];
        if (session_get(&S, session_settings[i].key, v, sizeof v) < 0)
            snprintf(v, sizeof v, "?");
        k += (size_t)snprintf(out + k, size - k, "%s=%s\n", session_settings[i].key, v);
    }
}

static int run_session_state(const target *t, const unsigned char *in, size_t n)
{
    (void)t, (void)in, (void)n;
    static char before[65536], after[65536];
    settings_text(before, sizeof before);
    const search_record *rec = S.srch.rec;
    const int nrec = S.srch.n;
    rm_clear_error();
    if (session_search_load(&S, inpath) < 0) {
        settings_text(after, sizeof after);
        if (strcmp(before, after))
            return rm_error("a refused state changed the session's settings");
        if (S.srch.rec != rec || S.srch.n != nrec)
            return rm_error("a refused state changed the session's search");
        return refused(0);
    }
    if (!S.srch.scored.slot || S.srch.n < 0)
        return rm_error("a loaded state left no search");
    return 0;
}

/* the state at path with its clocks zeroed, so that the seed is the same
 * in every run (the edits fall on the same bytes) */
static int steady_state(const char *path)
{
    search u;
    if (search_load(&u, &ctx2, path) < 0)
        return -1;
    u.t_warm = u.t_forest = u.t_eval = 0;
    for (int i = 0; i < u.n; i++)
        u.rec[i].r.seconds = 0.25;
    const int rc = search_save(&u, &ctx2, path);
    search_free(&u);
    return rc;
}

static int session_seeds(target *t)
{
    char path[700];
    snprintf(path, sizeof path, "%s/session.json", dir);
    if (session_init(&S) < 0 || session_load_benchmark(&S, NULL) < 0 ||
        session_set(&S, "evaluator", "benchmark") < 0 || session_set(&S, "n_warm", "5") < 0 ||
        session_set(&S, "n_collect", "2") < 0 || session_set(&S, "trees", "3") < 0 ||
        session_set(&S, "n_fitting", "30") < 0 || session_set(&S, "state", path) < 0 ||
        session_search_start(&S, "rminas") < 0 || session_search_step(&S, 7, NULL, NULL) < 0 ||
        steady_state(path) < 0 || add_seed_file(t, path) < 0)
        return -1;
    if (session_set(&S, "state", "none") < 0 || session_set(&S, "budget", "4") < 0)
        return -1;
    unlink(path);
    if (session_set(&S, "state", path) < 0 || session_search_start(&S, "reinforce") < 0 ||
        session_search_step(&S, 3, NULL, NULL) < 0 || steady_state(path) < 0 ||
        add_seed_file(t, path) < 0 ||
        session_set(&S, "state", "none") < 0)
        return -1;
    unlink(path);
    return 0;
}

/* ---- score logs (set score_log), read as rank and the search read them ---- */

static int run_score_log(const target *t, const unsigned char *in, size_t n)
{
    (void)t, (void)in, (void)n;
    /* the settings line of this session, so that the rows are what is read */
    char side[700], sig[4096];
    snprintf(side, sizeof side, "%s.settings", inpath);
    session_score_signature(&S, &space_nb201, sig, sizeof sig);
    FILE *g = fopen(side, "w");
    if (!g || fputs(sig, g) == EOF || fclose(g) != 0)
        return rm_error("cannot write %s", side);
    if (session_set(&S, "score_log", inpath) < 0)
        return -1;
    rank_entry *rows = NULL;
    int nrows = -1;
    rm_clear_error();
    FILE *f = session_score_log_open(&S, &space_nb201, &rows, &nrows);
    if (!f) {
        if (rows)
            return rm_error("a refused log left rows behind");
        return refused(1);
    }
    fclose(f);
    int rc = 0;
    for (int i = 0; i < nrows && !rc; i++) {
        const rank_entry *e = &rows[i];
        if (isnan(e->r.score) || e->params < 0 || e->macs < 0)
            rc = rm_error("row %d taken with score %g, params %lld, flops %lld", i, e->r.score,
                          e->params, e->macs);
        else if (session_score_log_find(&space_nb201, rows, nrows, &e->arch) < 0)
            rc = rm_error("row %d is not found by its architecture", i);
    }
    free(rows);
    return rc;
}

static const char *const log_tokens[] = {
    ",", "\n", "\r\n", "\"", "\"\"", "nan", "inf", "-inf", "1e999", "-1", "0x10", "0.5x", "",
    " ", "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "9223372036854775808", NULL};

static void score_log_seeds(target *t)
{
    const char *s1 =
        "arch,score,cka1,cka2,cka3,ce,seconds,params,flops,cifar10_test\n"
        "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|,"
        "0.75446859528423538,0.93597378620450589,0.92486747644613865,0.75604419142179302,"
        "2.2398847927109276,1.198,559386,78586506,93.91\n"
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|,1.5560424262360892,0.67168781167722635,0.52018907883848176,"
        "0.44757155845398833,2.3380059270592319,1.049,129306,16962186,85.863333\n"
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,inf,nan,nan,nan,nan,0.412,3738,"
        "1185034,nan\n";
    const char *s2 = "arch,score,cka1,cka2,cka3,ce,seconds,params,flops,cifar10_test\n"
                     "\"|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|"
                     "skip_connect~1|skip_connect~2|\",0.5,0.9,0.9,0.9,1.5,2.000,100,200,\n"
                     "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|,0.8,0.1,0.2,0.3,"
                     "2.0,1.0,1,2,50";
    add_seed(t, s1, strlen(s1));
    add_seed(t, s2, strlen(s2));
}

/* ---- the edits ---- */

static size_t edit(const target *t, unsigned char *p, size_t n, size_t cap)
{
    /* one edit half the time (most of them still parse), else up to 6 */
    const int k = rng_below(&R, 2) ? 1 : 2 + (int)rng_below(&R, 5);
    for (int e = 0; e < k; e++) {
        const int op = (int)rng_below(&R, 8);
        const size_t at = n ? (size_t)rng_below(&R, n + 1) : 0;
        switch (op) {
        case 0: /* flip a bit */
            if (n)
                p[at % n] ^= (unsigned char)(1u << rng_below(&R, 8));
            break;
        case 1: { /* set a byte, often to a boundary value */
            static const unsigned char v[] = {0, 1, 0x7f, 0x80, 0xff, '0', '9', '-', '.', 'e'};
            if (n)
                p[at % n] = rng_below(&R, 2) ? v[rng_below(&R, sizeof v)]
                                             : (unsigned char)rng_below(&R, 256);
            break;
        }
        case 2: /* insert a byte */
            if (n < cap) {
                memmove(p + at + 1, p + at, n - at);
                p[at] = (unsigned char)rng_below(&R, 256);
                n++;
            }
            break;
        case 3: { /* delete a run */
            const size_t len = at < n ? 1 + (size_t)rng_below(&R, n - at < 16 ? n - at : 16) : 0;
            memmove(p + at, p + at + len, n - at - len);
            n -= len;
            break;
        }
        case 4: { /* duplicate a run */
            if (!n)
                break;
            const size_t from = (size_t)rng_below(&R, n);
            size_t len = 1 + (size_t)rng_below(&R, n - from < 32 ? n - from : 32);
            if (n + len > cap)
                break;
            unsigned char tmp[32];
            memcpy(tmp, p + from, len);
            memmove(p + at + len, p + at, n - at);
            memcpy(p + at, tmp, len);
            n += len;
            break;
        }
        case 5: /* truncate */
            n = at;
            break;
        default: { /* splice a token in, or over what is there */
            int nt = 0;
            while (t->tokens[nt])
                nt++;
            const char *tok = t->tokens[rng_below(&R, (uint64_t)nt)];
            const size_t len = strlen(tok);
            if (n + len > cap)
                break;
            if (op == 6) {
                memmove(p + at + len, p + at, n - at);
                n += len;
            } else if (at + len > n) {
                n = at + len;
            }
            memcpy(p + at, tok, len);
            break;
        }
        }
    }
    return n;
}

/* in goes to inpath (the file targets read it there; after a crash it is
 * there to look at), then to the target */
static int try_input(const target *t, const unsigned char *in, size_t n)
{
    if (write_input(in, n) < 0)
        return rm_error("cannot write %s", inpath);
    return t->run(t, in, n);
}

static void fuzz(target *t, int iters)
{
    unsigned char *p = malloc(MAXIN + 1);
    int taken = 0, refusals = 0, broken = 0;
    snprintf(inpath, sizeof inpath, "%s/%s.in", dir, t->name);
    for (char *c = inpath + strlen(dir) + 1; *c; c++)
        *c = *c == ' ' ? '-' : *c;
    for (int s = 0; s < t->nseed && !broken; s++) {
        const int rc = try_input(t, t->seed[s].p, t->seed[s].n);
        if (rc != 0) {
            tap_ok(0, "%s: seed %d is taken (%s)", t->name, s, rm_last_error());
            broken = 1;
        }
    }
    for (int i = 0; i < iters && !broken; i++) {
        const buf *b = &t->seed[rng_below(&R, (uint64_t)t->nseed)];
        memcpy(p, b->p, b->n);
        size_t n = edit(t, p, b->n, MAXIN);
        /* now and then two edited inputs joined */
        if (rng_below(&R, 8) == 0) {
            const buf *c = &t->seed[rng_below(&R, (uint64_t)t->nseed)];
            const size_t cut = (size_t)rng_below(&R, c->n + 1);
            if (n + c->n - cut <= MAXIN) {
                memcpy(p + n, c->p + cut, c->n - cut);
                n += c->n - cut;
            }
        }
        const int rc = try_input(t, p, n);
        if (rc < 0) {
            broken = 1;
            tap_ok(0, "%s: input %d of seed %d: %s (the input is in %s)", t->name, i,
                   (int)(b - t->seed), rm_last_error(), inpath);
            write_input(p, n); /* again: a score log's reader may have cut it */
        }
        taken += rc == 0;
        refusals += rc == 1;
    }
    if (!broken)
        tap_ok(taken > 0 && refusals > 0,
               "%s: %d inputs from %d seeds: %d taken and whole, %d refused with a message",
               t->name, iters, t->nseed, taken, refusals);
    free(p);
}

int main(int argc, char **argv)
{
    const char *it = getenv("FUZZ_ITER"), *sd = getenv("FUZZ_SEED");
    const int iters = argc > 1 ? atoi(argv[1]) : it && *it ? atoi(it) : 3000;
    rng_seed(&R, sd && *sd ? strtoull(sd, NULL, 10) : 20261202);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/rminas-fuzz-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    if (mkdir(dir, 0700) != 0) {
        printf("1..0 # SKIP cannot make %s\n", dir);
        return 0;
    }
    static target ts[8];
    ts[0] = (target){.name = "nb201 strings", .tokens = nb201_tokens, .run = run_arch,
                     .sp = &space_nb201};
    ts[1] = (target){.name = "darts strings", .tokens = darts_tokens, .run = run_arch,
                     .sp = &space_darts};
    ts[2] = (target){.name = "chain strings", .tokens = chain_tokens, .run = run_arch,
                     .sp = &space_chain};
    ts[3] = (target){.name = "safetensors", .tokens = st_tokens, .run = run_st};
    ts[4] = (target){.name = "benchmark tables", .tokens = bench_tokens, .run = run_bench};
    ts[5] = (target){.name = "search states", .tokens = state_tokens, .run = run_state};
    ts[6] = (target){.name = "search states loaded by a session", .tokens = state_tokens,
                     .run = run_session_state};
    ts[7] = (target){.name = "score logs", .tokens = log_tokens, .run = run_score_log};
    const int nt = 8;
    for (int i = 0; i < 3; i++)
        arch_seeds(&ts[i]);
    bench_seeds(&ts[4]);
    score_log_seeds(&ts[7]);
    tap_plan(nt);
    if (st_seeds(&ts[3]) < 0 || state_seeds(&ts[5]) < 0 || session_seeds(&ts[6]) < 0) {
        tap_diag("making the seeds failed: %s", rm_last_error());
        return 1;
    }
    tap_diag("FUZZ_ITER %d, FUZZ_SEED %s; inputs in %s", iters, sd && *sd ? sd : "20261202",
             dir);
    for (int i = 0; i < nt; i++)
        fuzz(&ts[i], iters);
    /* the inputs of a failure stay for a look */
    if (!tap_failed) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            tap_diag("could not remove %s", dir);
    }
    for (int i = 0; i < nt; i++)
        for (int s = 0; s < ts[i].nseed; s++)
            free(ts[i].seed[s].p);
    session_free(&S);
    return tap_done();
}
