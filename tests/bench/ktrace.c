/* ktrace: where a process's GPU time goes, kernel by kernel, CUDA graph
 * nodes included. An LD_PRELOAD library: it records every kernel, memset
 * and memcpy the GPU runs through CUPTI's activity API and, when the
 * process exits, writes a summary to $KTRACE_OUT (default: stderr):
 *  - the kernels launched inside CUDA graphs (the RMI steps' replays) apart
 *    from the others (set-up, batch selection, the first step);
 *  - the graph launches by their node count (rminas replays two graphs per
 *    step: forward with the loss, backward with SGD): per launch the span
 *    on the GPU, the time some node ran (the union) and the sum of the
 *    nodes' times, and the gap before the next launch on the stream (the
 *    host's time between them);
 *  - the kernels by total time, with their count and mean.
 * The kernels' own times are exact; tracing adds a little host time per
 * launch, so the gaps are upper bounds.
 * Nsight Systems does this, but is not usable on the GPU machines this
 * project is lent (doc/gpu.md); CUPTI ships with the CUDA toolkit.
 *
 *   gcc -O2 -shared -fPIC -I/usr/local/cuda/include tests/bench/ktrace.c -o ktrace.so -ldl -lpthread
 *   KTRACE_OUT=trace.txt LD_PRELOAD=$PWD/ktrace.so rminas --device cuda -c ...
 *
 * libcupti is opened at run time (the colon-separated paths of $KTRACE_CUPTI,
 * else libcupti.so.13 on the library path or the toolkit's);
 * without it, or without a GPU, the process runs untraced and the summary
 * says why. Built by `tests/bench/devkit.sh pack`, used by its step ktrace. */
#define _GNU_SOURCE
#include <cupti.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ev {
    uint64_t start, end;
    uint32_t corr, graph, stream;
    int name; /* index into names */
} ev;

static struct {
    CUptiResult (*reg)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
    CUptiResult (*enable)(CUpti_ActivityKind);
    CUptiResult (*next)(uint8_t *, size_t, CUpti_Activity **);
    CUptiResult (*flush)(uint32_t);
    CUptiResult (*dropped)(CUcontext, uint32_t, size_t *);
} cu;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ev *evs;
static size_t nev, cap_ev, ndropped, nlost;
static char why[512];
/* kernel names by CUPTI's pointer (shared by the records of one kernel) */
enum { NAME_SLOTS = 1 << 14 };
static const char *name_ptr[NAME_SLOTS];
static int name_id[NAME_SLOTS];
static char *names[NAME_SLOTS];
static int nnames;

static int intern(const char *p)
{
    size_t h = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> 50;
    for (size_t i = 0; i < NAME_SLOTS; i++) {
        size_t s = (h + i) & (NAME_SLOTS - 1);
        if (name_ptr[s] == p)
            return name_id[s];
        if (!name_ptr[s]) {
            if (nnames == NAME_SLOTS - 1)
                return 0;
            name_ptr[s] = p;
            names[nnames] = strdup(p ? p : "?");
            return name_id[s] = nnames++;
        }
    }
    return 0;
}

/* the fixed names of memory operations, interned by their own address */
static const char memset_name[] = "[memset]", htod[] = "[memcpy HtoD]", dtoh[] = "[memcpy DtoH]",
                  dtod[] = "[memcpy DtoD]", other_copy[] = "[memcpy other]";

static void add(uint64_t start, uint64_t end, uint32_t corr, uint32_t graph, uint32_t stream,
                const char *name)
{
    if (nev == cap_ev) {
        size_t c = cap_ev ? 2 * cap_ev : 1 << 16;
        ev *e = realloc(evs, c * sizeof *e);
        if (!e) {
            nlost++;
            return;
        }
        evs = e;
        cap_ev = c;
    }
    evs[nev++] = (ev){start, end, corr, graph, stream, intern(name)};
}

static void CUPTIAPI buffer_requested(uint8_t **buf, size_t *size, size_t *max_records)
{
    *size = 8u << 20;
    *buf = aligned_alloc(8, *size);
    *max_records = 0;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size,
                                      size_t valid)
{
    (void)size;
    CUpti_Activity *r = NULL;
    pthread_mutex_lock(&lock);
    while (valid && cu.next(buf, valid, &r) == CUPTI_SUCCESS) {
        if (r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ||
            r->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            const CUpti_ActivityKernel10 *k = (const void *)r;
            add(k->start, k->end, k->correlationId, k->graphId, k->streamId, k->name);
        } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
            const CUpti_ActivityMemset4 *m = (const void *)r;
            add(m->start, m->end, m->correlationId, m->graphId, m->streamId, memset_name);
        } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const CUpti_ActivityMemcpy6 *m = (const void *)r;
            const char *n = m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_HTOD   ? htod
                            : m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_DTOH ? dtoh
                            : m->copyKind == CUPTI_ACTIVITY_MEMCPY_KIND_DTOD ? dtod
                                                                             : other_copy;
            add(m->start, m->end, m->correlationId, m->graphId, m->streamId, n);
        }
    }
    size_t d = 0;
    if (cu.dropped && cu.dropped(ctx, stream, &d) == CUPTI_SUCCESS)
        ndropped += d;
    pthread_mutex_unlock(&lock);
    free(buf);
}

/* libcupti: the paths of $KTRACE_CUPTI (colon-separated) first, then the
 * library path and the toolkit's */
static void *open_cupti(void)
{
    const char *more = getenv("KTRACE_CUPTI");
    char path[4096];
    while (more && *more) {
        size_t n = strcspn(more, ":");
        snprintf(path, sizeof path, "%.*s", (int)n, more);
        void *h = n ? dlopen(path, RTLD_NOW | RTLD_GLOBAL) : NULL;
        if (h)
            return h;
        more += n + (more[n] == ':');
    }
    const char *fixed[] = {"libcupti.so.13", "/usr/local/cuda/extras/CUPTI/lib64/libcupti.so.13",
                           "/usr/local/cuda/lib64/libcupti.so.13", "libcupti.so"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        void *h = dlopen(fixed[i], RTLD_NOW | RTLD_GLOBAL);
        if (h)
            return h;
    }
    snprintf(why, sizeof why, "no libcupti (%s)", dlerror());
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    return v[n / 2];
}

/* graph events grouped by launch (correlation id), then by start */
static int cmp_launch(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if ((x->graph != 0) != (y->graph != 0))
        return x->graph ? -1 : 1;
    if (x->corr != y->corr)
        return x->corr < y->corr ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

typedef struct launch {
    uint64_t start, end, busy, sum;
    uint32_t stream;
    int nodes;
} launch;

static int cmp_launch_start(const void *a, const void *b)
{
    const launch *x = a, *y = b;
    if (x->stream != y->stream)
        return x->stream < y->stream ? -1 : 1;
    return x->start < y->start ? -1 : x->start > y->start;
}

typedef struct total {
    double ns;
    long count;
    int name;
} total;

static int cmp_total(const void *a, const void *b)
{
    const total *x = a, *y = b;
    return x->ns < y->ns ? 1 : x->ns > y->ns ? -1 : 0;
}

static void print_totals(FILE *f, const ev *e, size_t n, double all_ns, int top)
{
    total *t = calloc((size_t)nnames + 1, sizeof *t);
    if (!t)
        return;
    for (int i = 0; i < nnames; i++)
        t[i].name = i;
    for (size_t i = 0; i < n; i++) {
        t[e[i].name].ns += (double)(e[i].end - e[i].start);
        t[e[i].name].count++;
    }
    qsort(t, (size_t)nnames, sizeof *t, cmp_total);
    fprintf(f, "  %6s %10s %8s %9s  %s\n", "share", "total ms", "count", "mean us", "name");
    for (int i = 0; i < nnames && i < top && t[i].count; i++)
        fprintf(f, "  %5.1f%% %10.3f %8ld %9.2f  %.150s\n", 100. * t[i].ns / all_ns, t[i].ns / 1e6,
                t[i].count, t[i].ns / 1e3 / (double)t[i].count, names[t[i].name]);
    free(t);
}

static void report(void)
{
    if (cu.flush)
        cu.flush(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&lock);
    const char *path = getenv("KTRACE_OUT");
    FILE *f = path && *path ? fopen(path, "w") : stderr;
    if (!f)
        f = stderr;
    Dl_info info;
    if (cu.reg && dladdr(*(void **)&cu.reg, &info) && info.dli_fname)
        fprintf(f, "ktrace: CUPTI from %s\n", info.dli_fname);
    if (why[0] || !nev) {
        fprintf(f, "ktrace: nothing traced: %s\n", why[0] ? why : "no GPU activity recorded");
        goto done;
    }
    qsort(evs, nev, sizeof *evs, cmp_launch);
    size_t ng = 0;
    while (ng < nev && evs[ng].graph)
        ng++;
    double g_ns = 0, o_ns = 0;
    for (size_t i = 0; i < nev; i++)
        *(i < ng ? &g_ns : &o_ns) += (double)(evs[i].end - evs[i].start);
    fprintf(f, "ktrace: %zu GPU operations recorded (%zu records dropped by CUPTI, %zu lost here)\n",
            nev, ndropped, nlost);
    fprintf(f, "  in CUDA graphs: %zu operations, %.1f ms of GPU time; outside: %zu, %.1f ms\n", ng,
            g_ns / 1e6, nev - ng, o_ns / 1e6);
    /* launches: one correlation id each */
    size_t nl = 0;
    launch *l = calloc(ng ? ng : 1, sizeof *l);
    for (size_t i = 0; l && i < ng;) {
        size_t j = i;
        launch *x = &l[nl++];
        x->start = evs[i].start;
        x->end = evs[i].end;
        x->stream = evs[i].stream;
        uint64_t covered = evs[i].start; /* union of the nodes' intervals, by start */
        for (; j < ng && evs[j].corr == evs[i].corr; j++) {
            const ev *e = &evs[j];
            x->sum += e->end - e->start;
            if (e->end > covered)
                x->busy += e->end - (e->start > covered ? e->start : covered);
            if (e->end > covered)
                covered = e->end;
            if (e->end > x->end)
                x->end = e->end;
            x->nodes++;
        }
        i = j;
    }
    if (l && nl) {
        /* by node count (a few distinct graphs), then the gaps on each stream */
        qsort(l, nl, sizeof *l, cmp_launch_start);
        uint64_t *v = malloc(nl * sizeof *v), *gap = malloc(nl * sizeof *gap);
        size_t ngap = 0;
        for (size_t i = 0; i + 1 < nl; i++)
            if (l[i + 1].stream == l[i].stream && l[i + 1].start >= l[i].end)
                gap[ngap++] = l[i + 1].start - l[i].end;
        uint64_t first = l[0].start, last = l[0].end, busy = 0, span_sum = 0;
        for (size_t i = 0; i < nl; i++) {
            busy += l[i].busy;
            span_sum += l[i].end - l[i].start;
            if (l[i].start < first)
                first = l[i].start;
            if (l[i].end > last)
                last = l[i].end;
        }
        fprintf(f, "  graph launches: %zu, from the first's start to the last's end %.1f ms; their spans "
                   "summed %.1f ms, of which some node of the launch ran %.1f ms (%.2f x the whole: "
                   "above 1, launches on several streams overlapped)\n",
                nl, (double)(last - first) / 1e6, (double)span_sum / 1e6, (double)busy / 1e6,
                (double)busy / (double)(last - first ? last - first : 1));
        if (v && gap && ngap) {
            uint64_t s = 0;
            for (size_t i = 0; i < ngap; i++)
                s += gap[i];
            fprintf(f, "  gap between consecutive launches on a stream: median %.1f us, mean %.1f us\n",
                    (double)median(gap, ngap) / 1e3, (double)s / (double)ngap / 1e3);
        }
        /* the distinct node counts (rminas: a few graphs), the most launched first */
        enum { MAXC = 64 };
        int counts[MAXC];
        size_t times[MAXC];
        int nc = 0;
        for (size_t i = 0; i < nl; i++) {
            int k = 0;
            while (k < nc && counts[k] != l[i].nodes)
                k++;
            if (k == nc && nc < MAXC) {
                counts[nc] = l[i].nodes;
                times[nc++] = 0;
            }
            if (k < nc)
                times[k]++;
        }
        for (int shown = 0; shown < 6 && v; shown++) {
            int k = -1;
            for (int j = 0; j < nc; j++)
                if (times[j] && (k < 0 || times[j] > times[k]))
                    k = j;
            if (k < 0)
                break;
            times[k] = 0;
            size_t m = 0;
            uint64_t sum_busy = 0, sum_nodes = 0;
            for (size_t i = 0; i < nl; i++)
                if (l[i].nodes == counts[k]) {
                    v[m++] = l[i].end - l[i].start;
                    sum_busy += l[i].busy;
                    sum_nodes += l[i].sum;
                }
            fprintf(f, "  launches of %d nodes: %zu, span median %.1f us, some node running "
                       "(mean) %.1f us, the nodes' times summed (mean) %.1f us\n",
                    counts[k], m, (double)median(v, m) / 1e3, (double)sum_busy / (double)m / 1e3,
                    (double)sum_nodes / (double)m / 1e3);
        }
        free(v);
        free(gap);
    }
    free(l);
    fprintf(f, "kernels and memory operations in CUDA graphs, by GPU time:\n");
    print_totals(f, evs, ng, g_ns > 0 ? g_ns : 1, 45);
    fprintf(f, "outside CUDA graphs, by GPU time:\n");
    print_totals(f, evs + ng, nev - ng, o_ns > 0 ? o_ns : 1, 15);
done:
    if (f != stderr)
        fclose(f);
    pthread_mutex_unlock(&lock);
}

__attribute__((constructor)) static void ktrace_start(void)
{
    void *h = open_cupti();
    if (h) {
        *(void **)&cu.reg = dlsym(h, "cuptiActivityRegisterCallbacks");
        *(void **)&cu.enable = dlsym(h, "cuptiActivityEnable");
        *(void **)&cu.next = dlsym(h, "cuptiActivityGetNextRecord");
        *(void **)&cu.flush = dlsym(h, "cuptiActivityFlushAll");
        *(void **)&cu.dropped = dlsym(h, "cuptiActivityGetNumDroppedRecords");
        CUptiResult rc;
        if (!cu.reg || !cu.enable || !cu.next || !cu.flush) {
            snprintf(why, sizeof why, "libcupti lacks the activity API");
            cu.flush = NULL;
        } else if ((rc = cu.reg(buffer_requested, buffer_completed)) != CUPTI_SUCCESS ||
                   (rc = cu.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL)) != CUPTI_SUCCESS ||
                   (rc = cu.enable(CUPTI_ACTIVITY_KIND_MEMSET)) != CUPTI_SUCCESS ||
                   (rc = cu.enable(CUPTI_ACTIVITY_KIND_MEMCPY)) != CUPTI_SUCCESS) {
            snprintf(why, sizeof why, "CUPTI refused the activity API (CUptiResult %d)", (int)rc);
            cu.flush = NULL;
        }
    }
    atexit(report);
}
