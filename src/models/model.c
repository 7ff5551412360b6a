/* State-dict I/O shared by every model. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "models/model.h"
#include "util/err.h"

void model_free(model *m)
{
    graph_free(m->g);
    m->g = NULL;
}

graph *model_start(model *m, const backend *be, int nclass, int hw)
{
    graph *g = graph_new(be);
    if (!g)
        return NULL;
    m->g = g;
    m->nclass = nclass;
    m->input = graph_input(g, 3, hw, hw);
    return g;
}

int model_finish(model *m, int x, const char *classifier, const char *what)
{
    graph *g = m->g;
    x = graph_gap(g, x);
    m->logits = graph_linear(g, x, m->nclass, classifier);
    graph_mark_output(g, m->logits);
    if (m->logits < 0 || graph_failed(g)) {
        model_free(m);
        return rm_error_context("building %s", what);
    }
    return 0;
}

int model_feature(model *m, int i, int x)
{
    m->feat[i] = x;
    graph_mark_output(m->g, x);
    return x;
}

static int shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
    return 0;
}

int model_load_state(model *m, const st_file *f, int strict)
{
    graph *g = m->g;
    int np = graph_num_params(g);
    size_t maxn = 1;
    for (int i = 0; i < np; i++)
        if (graph_param(g, i)->numel > maxn)
            maxn = graph_param(g, i)->numel;
    float *buf = malloc(maxn * sizeof(float));
    if (!buf)
        return rm_error("out of memory");
    int rc = 0;
    for (int i = 0; i < np && !rc; i++) {
        const param_info *pi = graph_param(g, i);
        const st_tensor *t = st_find(f, pi->name);
        if (!t) {
            if (pi->kind == PARAM_BN_COUNT)
                continue;
            rc = rm_error("missing key '%s' (the %s expects it)", pi->name, m->name);
            break;
        }
        int same = pi->kind == PARAM_BN_COUNT ? st_numel(t) == 1 : t->ndim == pi->ndim;
        for (int d = 0; same && pi->kind != PARAM_BN_COUNT && d < pi->ndim; d++)
            same = t->shape[d] == pi->shape[d];
        if (!same) {
            char want[80], have[80];
            shape_str(want, sizeof want, pi->ndim, pi->shape);
            shape_str(have, sizeof have, t->ndim, t->shape);
            rc = rm_error("key '%s' has shape %s, the %s expects %s", pi->name, have, m->name,
                          want);
            break;
        }
        if (st_read_f32(f, pi->name, buf, (int64_t)pi->numel) < 0) {
            rc = -1;
            break;
        }
        /* NaN or inf weights would train and score as garbage, silently */
        for (size_t j = 0; j < pi->numel && !rc; j++)
            if (!isfinite(buf[j]))
                rc = rm_error("key '%s' holds a non-finite value (%g at element %zu)", pi->name,
                              (double)buf[j], j);
        if (!rc && graph_param_set(g, i, buf) < 0)
            rc = -1;
    }
    if (!rc && strict) {
        for (int k = 0; k < f->n; k++) {
            int found = 0;
            for (int i = 0; i < np && !found; i++)
                found = !strcmp(graph_param(g, i)->name, f->t[k].name);
            if (!found) {
                rc = rm_error("unexpected key '%s' (not part of the %s)", f->t[k].name, m->name);
                break;
            }
        }
    }
    free(buf);
    graph_reset_optimizer(g);
    return rc;
}

int model_load_file(model *m, const char *path)
{
    st_file f;
    if (st_load(path, &f) < 0)
        return -1;
    int rc = model_load_state(m, &f, 1);
    st_free(&f);
    if (rc < 0)
        return rm_error_context("%s", path);
    return 0;
}

int model_save_file(model *m, const char *path, const char *const *meta_key,
                    const char *const *meta_val, int nmeta)
{
    graph *g = m->g;
    int np = graph_num_params(g);
    st_tensor *t = calloc((size_t)np, sizeof *t);
    int rc = 0;
    if (!t)
        return rm_error("out of memory");
    for (int i = 0; i < np; i++) {
        const param_info *pi = graph_param(g, i);
        t[i].name = (char *)pi->name;
        t[i].ndim = pi->ndim;
        memcpy(t[i].shape, pi->shape, sizeof pi->shape);
        if (pi->kind == PARAM_BN_COUNT) {
            float c;
            t[i].dtype = ST_I64;
            t[i].nbytes = sizeof(int64_t);
            t[i].data = malloc(sizeof(int64_t));
            if (!t[i].data || graph_param_get(g, i, &c) < 0) {
                rc = rm_error("out of memory");
                goto done;
            }
            *(int64_t *)t[i].data = (int64_t)c;
        } else {
            t[i].dtype = ST_F32;
            t[i].nbytes = pi->numel * sizeof(float);
            t[i].data = malloc(t[i].nbytes);
            if (!t[i].data || graph_param_get(g, i, t[i].data) < 0) {
                rc = rm_error("out of memory");
                goto done;
            }
        }
    }
    rc = st_save(path, t, np, meta_key, meta_val, nmeta);
done:
    for (int i = 0; i < np; i++)
        free(t[i].data);
    free(t);
    return rc;
}
