/* Search spaces behind one interface, so that the search, the forest, the
 * shell and the exports work on any of them unchanged.
 *
 * An architecture is a vector of npos categorical positions, each with
 * nchoice values (NAS-Bench-201: 6 edges x 5 operations). A space may
 * declare some vectors invalid (valid() == 0); sample and mutate only
 * return valid ones. The one-hot encoding for the forest is npos x nchoice;
 * select() is the final per-position vote (RMI-NAS's Theorem 1), kept valid
 * by the space. */
#ifndef RM_SPACE_H
#define RM_SPACE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "models/model.h"
#include "space/nb201.h"
#include "util/rng.h"

enum { SPACE_MAXPOS = 32, SPACE_MAXCHOICE = 8, SPACE_STRLEN = 1024 };

typedef struct sarch {
    uint8_t v[SPACE_MAXPOS];
} sarch;

typedef struct space {
    const char *name;
    int npos, nchoice;
    /* number of architectures when small enough to enumerate (index/unindex
     * are then a bijection onto 0..count-1), else 0 */
    int count;
    int (*parse)(const char *s, sarch *a);              /* 0, or -1 with rm_error */
    void (*format)(const sarch *a, char *buf, size_t size);
    int (*valid)(const sarch *a);                       /* NULL: every vector is valid */
    void (*sample)(rng *r, sarch *a);                   /* uniform over valid architectures */
    /* one change, valid, != parent (NULL: one position to another value) */
    void (*mutate)(rng *r, const sarch *parent, sarch *child);
    /* the vote over n architectures (NULL: space_mode) */
    void (*select)(const sarch *a, int n, sarch *out);
    int (*index)(const sarch *a);
    void (*unindex)(int i, sarch *a);
    /* the network with its three feature taps, for 3 x hw x hw inputs */
    int (*build)(model *m, const backend *be, const sarch *a, int nclass, int hw);
    /* a Graphviz drawing of the architecture into buf; -1 with rm_error if
     * it does not fit */
    int (*dot)(const sarch *a, char *buf, size_t size);
    const char *help;        /* one line: what the space is, its string form */
    /* the paper's search settings for this space: key, value, ..., NULL
     * (RMI-NAS.md section 3); choosing a space whose list differs from the
     * current one's applies it */
    const char *const *settings;
} space;

/* The spaces rminas knows, by name; NULL with rm_error for another
 * (space_find: NULL without an error). */
const space *space_get(const char *name);
const space *space_find(const char *name);
extern const space space_nb201, space_chain, space_darts;

/* Helpers every space uses. */
/* Per-position mode over n architectures, ties to the lower value. */
void space_mode(const space *sp, const sarch *a, int n, sarch *out);
/* sp->mutate / sp->select, or their defaults. */
void space_mutate(const space *sp, rng *r, const sarch *parent, sarch *child);
void space_select(const space *sp, const sarch *a, int n, sarch *out);
/* One-hot encoding: npos * nchoice doubles. */
void space_encode(const space *sp, const sarch *a, double *x);
/* A 64-bit key of the first npos positions (equal vectors, equal keys). */
uint64_t space_key(const space *sp, const sarch *a);
int space_equal(const space *sp, const sarch *a, const sarch *b);

/* NAS-Bench-201 cells in and out of the generic vector. */
static inline nb201_arch sarch_to_nb201(const sarch *a)
{
    nb201_arch n;
    memcpy(n.op, a->v, NB201_EDGES);
    return n;
}

static inline sarch nb201_to_sarch(const nb201_arch *n)
{
    sarch a;
    memset(&a, 0, sizeof a);
    memcpy(a.v, n->op, NB201_EDGES);
    return a;
}

#endif
