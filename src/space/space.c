#include "space/space.h"

#include <string.h>

#include "space/nb201.h"
#include "util/err.h"

const space *space_get(const char *name)
{
    if (!strcmp(name, "nb201"))
        return &space_nb201;
    rm_error("unknown search space '%s' (this rminas knows nb201)", name);
    return NULL;
}

void space_mode(const space *sp, const sarch *a, int n, sarch *out)
{
    memset(out, 0, sizeof *out);
    for (int p = 0; p < sp->npos; p++) {
        int cnt[SPACE_MAXCHOICE] = {0};
        for (int i = 0; i < n; i++)
            cnt[a[i].v[p]]++;
        int best = 0;
        for (int k = 1; k < sp->nchoice; k++)
            if (cnt[k] > cnt[best])
                best = k;
        out->v[p] = (uint8_t)best;
    }
}

void space_encode(const space *sp, const sarch *a, double *x)
{
    memset(x, 0, (size_t)sp->npos * sp->nchoice * sizeof *x);
    for (int p = 0; p < sp->npos; p++)
        x[p * sp->nchoice + a->v[p]] = 1;
}

uint64_t space_key(const space *sp, const sarch *a)
{
    uint64_t h = 1469598103934665603ULL;
    for (int p = 0; p < sp->npos; p++) {
        h ^= a->v[p];
        h *= 1099511628211ULL;
    }
    return h;
}

int space_equal(const space *sp, const sarch *a, const sarch *b)
{
    return !memcmp(a->v, b->v, (size_t)sp->npos);
}

/* ---- NAS-Bench-201 ---- */

static int nb_parse(const char *s, sarch *a)
{
    nb201_arch n;
    if (nb201_parse(s, &n) < 0)
        return -1;
    memset(a, 0, sizeof *a);
    memcpy(a->v, n.op, NB201_EDGES);
    return 0;
}

static void nb_format(const sarch *a, char *buf, size_t size)
{
    nb201_arch n;
    memcpy(n.op, a->v, NB201_EDGES);
    nb201_format(&n, buf, size);
}

static int nb_index(const sarch *a)
{
    nb201_arch n;
    memcpy(n.op, a->v, NB201_EDGES);
    return nb201_index(&n);
}

static void nb_unindex(int i, sarch *a)
{
    nb201_arch n;
    nb201_from_index(i, &n);
    memset(a, 0, sizeof *a);
    memcpy(a->v, n.op, NB201_EDGES);
}

static void nb_sample(rng *r, sarch *a)
{
    nb_unindex((int)rng_below(r, NB201_COUNT), a);
}

static void nb_mutate(rng *r, const sarch *parent, sarch *child)
{
    *child = *parent;
    int e = (int)rng_below(r, NB201_EDGES);
    int k = (int)rng_below(r, NB201_NOPS - 1);
    child->v[e] = (uint8_t)(k >= parent->v[e] ? k + 1 : k);
}

static void nb_select(const sarch *a, int n, sarch *out)
{
    space_mode(&space_nb201, a, n, out);
}

const space space_nb201 = {
    .name = "nb201",
    .npos = NB201_EDGES,
    .nchoice = NB201_NOPS,
    .count = NB201_COUNT,
    .parse = nb_parse,
    .format = nb_format,
    .valid = NULL,
    .sample = nb_sample,
    .mutate = nb_mutate,
    .select = nb_select,
    .index = nb_index,
    .unindex = nb_unindex,
};
