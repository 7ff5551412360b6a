/* Search state files: versioned JSON (jansson), written atomically after
 * every evaluation; a damaged or foreign file is refused, never changed.
 *
 * Layout (version 1):
 *   {"format": "rminas-search", "version": 1, "space": "nb201" (absent: nb201),
 *    "options": {...search_opts...}, "phase", "rng": [4 x hex u64],
 *    "tau", "successes", "iteration", "last_prob",
 *    "pending": architecture string or null, "pending_prob",
 *    "policy": {"logits", "m", "v", "baseline", "have_baseline", "t"},
 *    "time": {"warmup", "forest", "eval"}, "stop_reason",
 *    "context": {caller's key: text},
 *    "records": [{"arch", "score", "cka": [3], "ce", "seconds", "diverged", ["cached",]
 *                 "phase", "prob", "good"}, ...]}
 * Finite doubles are JSON numbers printed with 17 significant digits (exact
 * round trip); inf and NaN are the strings "inf", "-inf", "nan". Seeds and
 * generator states are hexadecimal strings (JSON numbers lose 64-bit
 * integers in many readers). */
#include "search/search.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/atomic.h"
#include "util/err.h"

enum { STATE_VERSION = 1 };
static const char STATE_FORMAT[] = "rminas-search";

int search_ctx_set(search_ctx *c, const char *key, const char *val)
{
    int i = 0;
    while (i < c->n && strcmp(c->key[i], key))
        i++;
    if (i == c->n) {
        if (c->n == 64)
            return rm_error("search context full");
        c->n++;
    }
    snprintf(c->key[i], sizeof c->key[i], "%s", key);
    snprintf(c->val[i], sizeof c->val[i], "%s", val);
    return 0;
}

const char *search_ctx_get(const search_ctx *c, const char *key)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->key[i], key))
            return c->val[i];
    return NULL;
}

/* ---- writing ---- */

static json_t *jnum(double v)
{
    if (isnan(v))
        return json_string("nan");
    if (isinf(v))
        return json_string(v > 0 ? "inf" : "-inf");
    return json_real(v);
}

static json_t *jhex(uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%016" PRIx64, v);
    return json_string(b);
}

static json_t *jarray(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, jnum(v[i]));
    return a;
}

/* The evaluations made ahead and not taken yet (ctx->held), with the
 * settings line they were made under. */
static json_t *held_to_json(const space *sp, const search_ctx *ctx)
{
    json_t *ev = json_array();
    for (int i = 0; ev && i < ctx->nheld; i++) {
        const search_held *h = &ctx->held[i];
        char arch[SPACE_STRLEN];
        sp->format(&h->arch, arch, sizeof arch);
        if (json_array_append_new(
                ev, json_pack("{s:s, s:o, s:o, s:o, s:o, s:b, s:o, s:o}", "arch", arch, "score",
                              jnum(h->r.score), "cka", jarray(h->r.cka, 3), "ce", jnum(h->r.ce),
                              "seconds", jnum(h->r.seconds), "diverged", h->r.diverged, "params",
                              jnum(h->params), "macs", jnum(h->macs))) < 0) {
            json_decref(ev);
            return NULL;
        }
    }
    return ev ? json_pack("{s:s, s:o}", "settings", ctx->held_sig, "evaluations", ev) : NULL;
}

static json_t *state_to_json(const search *s, const search_ctx *ctx)
{
    const search_opts *o = &s->o;
    json_t *opt = json_pack("{s:s, s:o, s:i, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, "
                            "s:o, s:o}",
                            "algo", search_algo_names[o->algo], "seed", jhex(o->seed), "n_warm",
                            o->n_warm, "quantile", jnum(o->quantile), "n_fitting", o->n_fitting,
                            "n_collect", o->n_collect, "top", o->top, "trees", o->trees, "cap",
                            o->cap, "budget", o->budget, "population", o->population,
                            "sample_size", o->sample_size, "rl_lr", jnum(o->rl_lr), "rl_momentum",
                            jnum(o->rl_momentum), "max_params", jnum(o->max_params), "max_flops",
                            jnum(o->max_flops));
    json_t *rng = json_pack("[o,o,o,o]", jhex(s->rng.s[0]), jhex(s->rng.s[1]), jhex(s->rng.s[2]),
                            jhex(s->rng.s[3]));
    const int NF = s->sp->npos * s->sp->nchoice;
    json_t *pol = json_pack("{s:o, s:o, s:o, s:o, s:b, s:i}", "logits", jarray(s->logits, NF), "m",
                            jarray(s->adam_m, NF), "v", jarray(s->adam_v, NF), "baseline",
                            jnum(s->baseline), "have_baseline", s->have_baseline, "t", s->adam_t);
    json_t *tm = json_pack("{s:o, s:o, s:o}", "warmup", jnum(s->t_warm), "forest",
                           jnum(s->t_forest), "eval", jnum(s->t_eval));
    json_t *cx = json_object();
    for (int i = 0; ctx && cx && i < ctx->n; i++)
        json_object_set_new(cx, ctx->key[i], json_string(ctx->val[i]));
    json_t *recs = json_array();
    for (int i = 0; recs && i < s->n; i++) {
        const search_record *r = &s->rec[i];
        char arch[SPACE_STRLEN];
        s->sp->format(&r->arch, arch, sizeof arch);
        json_t *q = json_pack("{s:s, s:o, s:o, s:o, s:o, s:b, s:s, s:o, s:b}", "arch", arch,
                              "score", jnum(r->r.score), "cka", jarray(r->r.cka, 3), "ce",
                              jnum(r->r.ce), "seconds", jnum(r->r.seconds), "diverged",
                              r->r.diverged, "phase", search_phase_names[r->phase], "prob",
                              jnum(r->prob), "good", r->good);
        if (q && r->r.cached)
            json_object_set_new(q, "cached", json_true());
        json_array_append_new(recs, q);
    }
    json_t *held = ctx && ctx->nheld ? held_to_json(s->sp, ctx) : NULL;
    if (!opt || !rng || !pol || !tm || !cx || !recs || (ctx && ctx->nheld && !held)) {
        json_decref(opt);
        json_decref(rng);
        json_decref(pol);
        json_decref(tm);
        json_decref(cx);
        json_decref(recs);
        json_decref(held);
        return NULL;
    }
    char pend[SPACE_STRLEN];
    if (s->have_pending)
        s->sp->format(&s->pending, pend, sizeof pend);
    json_t *root = json_pack(
        "{s:s, s:i, s:s, s:o, s:s, s:o, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o}",
        "format", STATE_FORMAT, "version", STATE_VERSION, "space", s->sp->name, "options", opt,
        "phase", search_phase_names[s->phase], "rng", rng, "tau", jnum(s->tau), "successes",
        s->successes, "iteration", s->iteration, "last_prob", jnum(s->last_prob), "pending",
        s->have_pending ? json_string(pend) : json_null(), "pending_prob", jnum(s->pending_prob),
        "policy", pol, "time", tm, "stop_reason", s->stop_reason, "context", cx, "records", recs);
    if (root && held && json_object_set_new(root, "ahead", held) < 0) {
        json_decref(root);
        return NULL;
    }
    if (!root)
        json_decref(held);
    return root;
}

int search_save(const search *s, const search_ctx *ctx, const char *path)
{
    json_t *root = state_to_json(s, ctx);
    if (!root)
        return rm_error("%s: out of memory building the search state", path);
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text)
        return rm_error("%s: cannot serialize the search state", path);
    const void *buf[2] = {text, "\n"};
    size_t len[2] = {strlen(text), 1};
    int rc = rm_write_atomic(path, buf, len, 2);
    free(text);
    return rc;
}

/* ---- reading ---- */

typedef struct reader {
    const char *path;
    char where[96];
} reader;

static int bad(const reader *r, const char *key, const char *what)
{
    return rm_error("%s: damaged search state: %s%s%s %s", r->path, r->where, *r->where ? "." : "",
                    key, what);
}

/* A number as jnum wrote it; 0, or -1 when v is not one. */
static int num_value(json_t *v, double *out)
{
    const char *t = json_string_value(v);
    if (json_is_number(v))
        *out = json_number_value(v);
    else if (t && !strcmp(t, "inf"))
        *out = INFINITY;
    else if (t && !strcmp(t, "-inf"))
        *out = -INFINITY;
    else if (t && !strcmp(t, "nan"))
        *out = NAN;
    else
        return -1;
    return 0;
}

static int get_num(const reader *r, json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (num_value(v, out) < 0)
        return bad(r, key, v ? "is not a number" : "is missing");
    return 0;
}

static int get_int(const reader *r, json_t *obj, const char *key, int lo, int hi, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    } else {
        if (!json_is_integer(v))
            return bad(r, key, v ? "is not an integer" : "is missing");
        json_int_t x = json_integer_value(v);
        if (x < lo || x > hi)
            return bad(r, key, "is out of range");
        *out = (int)x;
    }
    if (*out < lo || *out > hi)
        return bad(r, key, "is out of range");
    return 0;
}

static int parse_hex(const reader *r, json_t *v, const char *key, uint64_t *out)
{
    const char *t = json_string_value(v);
    char *end;
    if (!t || !*t)
        return bad(r, key, "is not a hexadecimal string");
    errno = 0;
    unsigned long long x = strtoull(t, &end, 16);
    if (*end || errno)
        return bad(r, key, "is not a hexadecimal string");
    *out = x;
    return 0;
}

static int get_name(const reader *r, json_t *obj, const char *key, const char *const *names, int n,
                    int *out)
{
    const char *t = json_string_value(json_object_get(obj, key));
    if (!t)
        return bad(r, key, "is missing");
    for (int i = 0; i < n; i++)
        if (!strcmp(t, names[i])) {
            *out = i;
            return 0;
        }
    return bad(r, key, "has an unknown value");
}

static int get_array(const reader *r, json_t *obj, const char *key, double *out, int n)
{
    json_t *a = json_object_get(obj, key);
    if (!json_is_array(a) || (int)json_array_size(a) != n)
        return bad(r, key, "is not an array of the right length");
    for (int i = 0; i < n; i++)
        if (num_value(json_array_get(a, (size_t)i), &out[i]) < 0)
            return bad(r, key, "holds a value that is not a number");
    return 0;
}

/* An evaluation's score, cka, ce, seconds and diverged (a record's or one
 * made ahead); a NaN score is refused. */
static int get_eval(const reader *r, json_t *q, search_eval *e)
{
    if (get_num(r, q, "score", &e->score) < 0 || get_array(r, q, "cka", e->cka, 3) < 0 ||
        get_num(r, q, "ce", &e->ce) < 0 || get_num(r, q, "seconds", &e->seconds) < 0 ||
        get_int(r, q, "diverged", 0, 1, &e->diverged) < 0)
        return -1;
    return isnan(e->score) ? bad(r, "score", "is NaN") : 0;
}

/* "ahead" (optional): the evaluations made ahead and not taken yet, into
 * ctx->held */
static int held_from_json(reader *r, const space *sp, json_t *ahead, search_ctx *ctx)
{
    if (!ahead)
        return 0;
    const char *sig = json_string_value(json_object_get(ahead, "settings"));
    json_t *ev = json_object_get(ahead, "evaluations");
    if (!json_is_object(ahead) || !sig || !json_is_array(ev))
        return bad(r, "ahead", "is not {\"settings\": text, \"evaluations\": [...]}");
    if (json_array_size(ev) > SEARCH_MAX_HELD) {
        char what[64];
        snprintf(what, sizeof what, "holds more evaluations than %d", SEARCH_MAX_HELD);
        return bad(r, "ahead", what);
    }
    snprintf(ctx->held_sig, sizeof ctx->held_sig, "%s", sig);
    for (size_t i = 0; i < json_array_size(ev); i++) {
        json_t *q = json_array_get(ev, i);
        search_held *h = &ctx->held[i];
        memset(h, 0, sizeof *h);
        snprintf(r->where, sizeof r->where, "ahead.evaluations[%zu]", i);
        const char *arch = json_string_value(json_object_get(q, "arch"));
        if (!json_is_object(q) || !arch)
            return bad(r, "arch", "is missing");
        if (sp->parse(arch, &h->arch) < 0)
            return rm_error_context("%s: damaged search state: %s.arch", r->path, r->where);
        if (get_eval(r, q, &h->r) < 0 || get_num(r, q, "params", &h->params) < 0 ||
            get_num(r, q, "macs", &h->macs) < 0)
            return -1;
    }
    ctx->nheld = (int)json_array_size(ev);
    r->where[0] = 0;
    return 0;
}

static int from_json(search *s, search_ctx *ctx, json_t *root, const char *path)
{
    reader rd = {path, ""};
    reader *r = &rd;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (!json_is_object(root) || !fmt || strcmp(fmt, STATE_FORMAT))
        return rm_error("%s: not an rminas search state (no \"format\": \"%s\")", path,
                        STATE_FORMAT);
    int version;
    if (get_int(r, root, "version", 1, 1 << 30, &version) < 0)
        return -1;
    if (version > STATE_VERSION)
        return rm_error("%s: search state version %d, written by a newer rminas (this one reads "
                        "version %d)", path, version, STATE_VERSION);
    search_opts o;
    search_opts_default(&o);
    json_t *opt = json_object_get(root, "options");
    if (!json_is_object(opt))
        return bad(r, "options", "is missing");
    snprintf(rd.where, sizeof rd.where, "options");
    if (get_name(r, opt, "algo", search_algo_names, SEARCH_NALGO, &o.algo) < 0 ||
        parse_hex(r, json_object_get(opt, "seed"), "seed", &o.seed) < 0 ||
        get_int(r, opt, "n_warm", 1, 1 << 30, &o.n_warm) < 0 ||
        get_num(r, opt, "quantile", &o.quantile) < 0 ||
        get_int(r, opt, "n_fitting", 1, 1 << 30, &o.n_fitting) < 0 ||
        get_int(r, opt, "n_collect", 1, 1 << 30, &o.n_collect) < 0 ||
        get_int(r, opt, "top", 0, 1 << 30, &o.top) < 0 ||
        get_int(r, opt, "trees", 1, 1 << 30, &o.trees) < 0 ||
        get_int(r, opt, "cap", 0, 1 << 30, &o.cap) < 0 ||
        get_int(r, opt, "budget", 1, 1 << 30, &o.budget) < 0 ||
        get_int(r, opt, "population", 1, 1 << 30, &o.population) < 0 ||
        get_int(r, opt, "sample_size", 1, 1 << 30, &o.sample_size) < 0 ||
        get_num(r, opt, "rl_lr", &o.rl_lr) < 0 || get_num(r, opt, "rl_momentum", &o.rl_momentum) < 0 ||
        get_num(r, opt, "max_params", &o.max_params) < 0 ||
        get_num(r, opt, "max_flops", &o.max_flops) < 0)
        return -1;
    rd.where[0] = 0;
    const char *spn = json_string_value(json_object_get(root, "space"));
    const space *sp = space_get(spn ? spn : "nb201");
    if (!sp)
        return rm_error_context("%s", path);
    if (search_init(s, sp, &o) < 0)
        return rm_error_context("%s: damaged search state: options", path);
    json_t *rng = json_object_get(root, "rng");
    if (!json_is_array(rng) || json_array_size(rng) != 4)
        return bad(r, "rng", "is not 4 hexadecimal strings");
    for (int i = 0; i < 4; i++)
        if (parse_hex(r, json_array_get(rng, (size_t)i), "rng", &s->rng.s[i]) < 0)
            return -1;
    if (!(s->rng.s[0] | s->rng.s[1] | s->rng.s[2] | s->rng.s[3]))
        return bad(r, "rng", "is all zero");
    if (get_name(r, root, "phase", search_phase_names, 4, &s->phase) < 0 ||
        get_num(r, root, "tau", &s->tau) < 0 ||
        get_int(r, root, "successes", 0, 1 << 30, &s->successes) < 0 ||
        get_int(r, root, "iteration", 0, 1 << 30, &s->iteration) < 0 ||
        get_num(r, root, "last_prob", &s->last_prob) < 0 ||
        get_num(r, root, "pending_prob", &s->pending_prob) < 0)
        return -1;
    json_t *pend = json_object_get(root, "pending");
    if (json_is_string(pend)) {
        if (sp->parse(json_string_value(pend), &s->pending) < 0)
            return rm_error_context("%s: damaged search state: pending", path);
        s->have_pending = 1;
    } else if (json_is_integer(pend) && sp->count) {
        /* rminas before spaces stored the NB-201 index, -1 for none */
        json_int_t v = json_integer_value(pend);
        if (v >= sp->count)
            return bad(r, "pending", "is out of range");
        if (v >= 0) {
            sp->unindex((int)v, &s->pending);
            s->have_pending = 1;
        }
    } else if (!json_is_null(pend)) {
        return bad(r, "pending", "is not an architecture or null");
    }
    if (o.algo == SEARCH_RMINAS ? s->phase == PHASE_RUN
                                : (s->phase == PHASE_WARMUP || s->phase == PHASE_EXPAND))
        return bad(r, "phase", "does not fit the algorithm");
    json_t *pol = json_object_get(root, "policy");
    const int NF = sp->npos * sp->nchoice;
    if (!json_is_object(pol))
        return bad(r, "policy", pol ? "is not an object" : "is missing");
    snprintf(rd.where, sizeof rd.where, "policy");
    if (get_array(r, pol, "logits", s->logits, NF) < 0 ||
        get_array(r, pol, "m", s->adam_m, NF) < 0 || get_array(r, pol, "v", s->adam_v, NF) < 0 ||
        get_num(r, pol, "baseline", &s->baseline) < 0 ||
        get_int(r, pol, "have_baseline", 0, 1, &s->have_baseline) < 0 ||
        get_int(r, pol, "t", 0, 1 << 30, &s->adam_t) < 0)
        return -1;
    json_t *tm = json_object_get(root, "time");
    rd.where[0] = 0;
    if (!json_is_object(tm))
        return bad(r, "time", tm ? "is not an object" : "is missing");
    snprintf(rd.where, sizeof rd.where, "time");
    if (get_num(r, tm, "warmup", &s->t_warm) < 0 ||
        get_num(r, tm, "forest", &s->t_forest) < 0 || get_num(r, tm, "eval", &s->t_eval) < 0)
        return -1;
    rd.where[0] = 0;
    const char *why = json_string_value(json_object_get(root, "stop_reason"));
    if (!why)
        return bad(r, "stop_reason", "is missing");
    snprintf(s->stop_reason, sizeof s->stop_reason, "%s", why);
    json_t *cx = json_object_get(root, "context");
    if (!json_is_object(cx))
        return bad(r, "context", "is missing");
    memset(ctx, 0, sizeof *ctx);
    const char *key;
    json_t *val;
    json_object_foreach(cx, key, val) {
        if (!json_is_string(val) || search_ctx_set(ctx, key, json_string_value(val)) < 0)
            return bad(r, "context", "holds a value that is not text");
    }
    json_t *recs = json_object_get(root, "records");
    if (!json_is_array(recs))
        return bad(r, "records", "is missing");
    size_t n = json_array_size(recs);
    s->cap_rec = (int)n + 16;
    s->rec = calloc((size_t)s->cap_rec, sizeof *s->rec);
    if (!s->rec)
        return rm_error("%s: out of memory", path);
    for (size_t i = 0; i < n; i++) {
        json_t *q = json_array_get(recs, i);
        search_record *e = &s->rec[i];
        snprintf(rd.where, sizeof rd.where, "records[%zu]", i);
        const char *arch = json_string_value(json_object_get(q, "arch"));
        if (!json_is_object(q) || !arch)
            return bad(r, "arch", "is missing");
        if (sp->parse(arch, &e->arch) < 0)
            return rm_error_context("%s: damaged search state: %s.arch", path, rd.where);
        if (get_eval(r, q, &e->r) < 0 ||
            get_name(r, q, "phase", search_phase_names, 3, &e->phase) < 0 ||
            get_num(r, q, "prob", &e->prob) < 0 || get_int(r, q, "good", 0, 1, &e->good) < 0 ||
            (json_object_get(q, "cached") && get_int(r, q, "cached", 0, 1, &e->r.cached) < 0))
            return -1;
        if (search_mark_scored(s, &e->arch) < 0)
            return -1;
    }
    s->n = (int)n;
    rd.where[0] = 0;
    return held_from_json(r, sp, json_object_get(root, "ahead"), ctx);
}

int search_load(search *s, search_ctx *ctx, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        FILE *f = fopen(path, "r");
        if (!f)
            return rm_error("%s: %s", path, strerror(errno));
        fclose(f);
        return rm_error("%s: not an rminas search state (line %d column %d: %s)", path, jerr.line,
                        jerr.column, jerr.text);
    }
    search t;
    search_ctx c;
    memset(&t, 0, sizeof t);
    int rc = from_json(&t, &c, root, path);
    json_decref(root);
    if (rc < 0) {
        search_free(&t);
        return -1;
    }
    *s = t;
    *ctx = c;
    return 0;
}

int search_probe(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? 0 : rm_error("%s: %s", path, strerror(errno));
    search t;
    search_ctx *c = malloc(sizeof *c);
    if (!c)
        return rm_error("out of memory");
    int rc = search_load(&t, c, path);
    free(c);
    if (rc < 0)
        return -1;
    search_free(&t);
    return 1;
}
