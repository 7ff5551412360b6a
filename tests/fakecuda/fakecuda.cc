/* A fake GPU for the CUDA backend: the CUDA runtime, cuBLAS and cuDNN calls
 * that kernels/cuda.cu and kernels/cuda_conv.cu make, implemented on the CPU,
 * so that the backend's host code (streams, the pool, CUDA-graph captures,
 * threads, descriptors, algorithm choice, workspaces) runs, unchanged, in
 * every make check: tests/test_fakecuda.sh builds the module
 * rminas-fakecuda.so from those two files (g++, these headers instead of the
 * toolkit's, our kernels through tests/cuda_emu.h) and runs tests/test_cuda
 * and the shell on it. A real GPU is still the test of the real libraries,
 * of speed, and of races inside kernels.
 *
 * It is stricter than a GPU where that is cheap, so that a mistake shows here
 * deterministically instead of once in a while there:
 *  - Work is deferred. Every operation goes to its stream's queue and runs
 *    only when the host waits: cudaStreamSynchronize of that stream, or a
 *    call that waits for the whole device (cudaFree, cudaFreeHost, a library
 *    handle destroyed). A host that reads pinned memory before waiting reads
 *    what was there; a buffer freed before the work that uses it ran is
 *    reported as a use after free when that work runs.
 *  - Copies follow CUDA's rules: from pageable host memory the data is taken
 *    at the call; to pageable host memory the call waits for its stream;
 *    pinned memory (cudaMallocHost) is read and written when the copy runs.
 *  - Device memory starts as 0xff bytes (NaN), is filled with them again
 *    when freed, and every pointer a library call or copy is given is
 *    checked, with the extent it will touch, against the live device
 *    allocations; every pointer argument of a kernel must point into one
 *    (or into pinned memory). A violation prints "fakecuda: ..." and makes
 *    the error sticky, as a fault on a GPU does: every later wait fails.
 *  - Captures (cudaStreamBeginCapture in global or thread-local mode): the
 *    capturing thread may not allocate or free with cudaMalloc/cudaFree/
 *    cudaMallocHost/cudaFreeHost, create or destroy streams or handles, or
 *    wait for a stream; a device-wide wait from any thread while a capture
 *    is under way breaks that capture; cuBLAS needs its workspace set; copies
 *    with pageable host memory are not captured. Each of these makes the
 *    capture end with cudaErrorStreamCaptureInvalidated (some are allowed on
 *    a GPU; our backend needs none of them).
 *  - Memory: the device's default pool keeps what is freed into it
 *    (cudaFreeAsync, once the free has run) for cudaMallocAsync on any
 *    stream until it is trimmed or a synchronization finds it holding more
 *    than its release threshold; plain cudaMalloc cannot use it, and
 *    cudaMemGetInfo does not count it free. FAKECUDA_POOLS=0: a device
 *    without memory pools (the attribute says 0, the pool calls fail with
 *    cudaErrorNotSupported).
 *  - cuDNN: the descriptors must describe one convolution; the workspace
 *    given must hold what the algorithm's size query said (which is more
 *    than zero for the heuristics' first deterministic choice), and the
 *    algorithm fills all of it with NaN bytes; heuristics and Find list a
 *    non-deterministic algorithm first, Find also ones in tensor-op math and
 *    one converting to half, so the backend's choice is tested; algorithms
 *    that run on tensor cores (descriptor math other than FMA) round their
 *    inputs to TF32's 10 mantissa bits, as the GPU does.
 * The convolutions themselves are the CPU backend's (the test programs
 * export it), the GEMMs OpenBLAS's, our kernels run in tests/cuda_emu.h.
 * Everything runs under one lock, one operation at a time.
 *
 * Environment: FAKECUDA_DEVICES (default 1; 0: no device), FAKECUDA_MEM_MB
 * (device memory, default 16384), FAKECUDA_POOLS=0 (see above),
 * FAKECUDA_TRACE=1 (every operation as it runs, to stderr), and
 * FAKECUDA_FAIL, failures on request, so that the
 * backend's error paths run too (a GPU takes them only when something goes
 * wrong): a comma-separated list of CALL[:N][:capture], the N-th (default
 * the first) call of CALL in the process fails; with "capture", only the
 * calls a thread makes while it captures count. CALL is
 *  - a runtime, cuBLAS or cuDNN function: the call returns an error and does
 *    nothing (cudaStreamEndCapture ends the capture as invalidated, as when
 *    something in it could not be captured; cudaMalloc, cudaMallocAsync and
 *    cudaMallocHost return cudaErrorMemoryAllocation); not sticky, as a
 *    library's failed status;
 *  - calloc or realloc called by the backend itself: it returns NULL;
 *  - or a kernel (k_...): its N-th launch is queued, and faults when it runs,
 *    sticky, as a kernel's fault on a GPU (cudaErrorLaunchFailure at the next
 *    wait and at every call after it).
 * cuDNN's algorithm queries (heuristics and Find) take one more word instead
 * of failing: the call succeeds with an answer the backend must cope with:
 *  - "unsupported": every algorithm listed as CUDNN_STATUS_NOT_SUPPORTED;
 *  - "nondeterministic": only the non-deterministic algorithms supported;
 *  - "less": each algorithm's workspace listed as less than it needs (the
 *    workspace-size queries and the passes know the truth).
 * A workspace-size query takes "more": it answers 4 times what the
 * algorithm needs (and fails without a word).
 * Each injected failure prints a line "FAKECUDA_FAIL: call N of CALL fails"
 * (with the word after it in brackets; for cuDNN's convolution calls, the
 * convolution: "on batch N, CIN x HxW -> COUT"). */
#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cudnn.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "tensor/backend.h"
}

#include "fakecuda.h"

namespace {

std::recursive_mutex mu; /* the device: every call and every operation */

/* memory an operation reads or writes: its allocation */
struct touch {
    uintptr_t base;
    bool write;
};
struct op {
    std::function<void()> run;
    std::string what;
    std::vector<touch> touches;
};
typedef std::shared_ptr<const std::vector<op>> op_list;

} // namespace

struct fake_graph {
    std::vector<op> ops;
};
struct fake_graph_exec {
    op_list ops;
};
struct fake_stream {
    std::deque<op> q;
    fake_graph *cap = nullptr; /* the capture under way */
    bool cap_bad = false;
    std::thread::id cap_thread;
    cudaStreamCaptureMode cap_mode = cudaStreamCaptureModeGlobal;
};
/* The device's default pool: what is freed into it (cudaFreeAsync of its
 * memory, once the free has run) stays the pool's, for cudaMallocAsync on
 * any stream, until the pool is trimmed; plain cudaMalloc cannot use it.
 * At a synchronization the pool gives back what it holds over its release
 * threshold (CUDA's default: 0, everything). */
struct fake_pool {
    size_t held = 0;
    uint64_t keep = 0;
};
struct fake_blas {
    cudaStream_t stream = nullptr;
    void *ws = nullptr;
    size_t ws_bytes = 0;
};
struct fake_dnn {
    cudaStream_t stream = nullptr;
};
struct fake_tensor_desc {
    int set = 0, n, c, h, w;
};
struct fake_filter_desc {
    int set = 0, k, c, h, w;
};
struct fake_conv_desc {
    int set = 0, pad_h, pad_w, u, v, dil_h, dil_w, groups = 1;
    cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

struct alloc_info {
    size_t bytes;
    bool pinned;
    bool freeing; /* a stream-ordered free is queued */
    bool pooled;  /* from the pool (cudaMallocAsync) */
};
std::map<uintptr_t, alloc_info> allocs; /* live device and pinned allocations */
size_t dev_used, dev_limit; /* the live allocations (not the pool's), the device's memory */
int devices = -1, trace, pools = 1;
cudaError_t sticky = cudaSuccess;
thread_local cudaError_t last_error = cudaSuccess;
thread_local int captures_here; /* this thread's captures in global/thread-local mode */
std::vector<fake_stream *> streams;
/* per allocation, per stream: the reads and writes queued and not yet run */
std::map<uintptr_t, std::map<fake_stream *, std::pair<int, int>>> pending;
fake_pool the_pool;
long ops_run, faults;

/* FAKECUDA_FAIL's rules */
struct fail_rule {
    std::string call;
    long nth;
    bool capture;
    long seen;
    std::string answer; /* an algorithm query's wrong answer, or empty: it fails */
};
std::vector<fail_rule> fail_rules;

void parse_fail(const char *spec)
{
    std::stringstream items(spec);
    std::string item;
    while (std::getline(items, item, ',')) {
        std::stringstream parts(item);
        std::string part;
        fail_rule r{"", 1, false, 0, ""};
        std::getline(parts, r.call, ':');
        while (std::getline(parts, part, ':')) {
            if (part == "capture")
                r.capture = true;
            else if (part == "unsupported" || part == "nondeterministic" || part == "less" ||
                     part == "more")
                r.answer = part;
            else
                r.nth = atol(part.c_str());
        }
        if (!r.call.empty())
            fail_rules.push_back(r);
    }
}

void setup(void)
{
    if (devices >= 0)
        return;
    const char *e = getenv("FAKECUDA_DEVICES");
    devices = e ? atoi(e) : 1;
    e = getenv("FAKECUDA_MEM_MB");
    dev_limit = (size_t)(e ? atof(e) : 16384.) * (1 << 20);
    e = getenv("FAKECUDA_POOLS");
    pools = !(e && *e == '0');
    e = getenv("FAKECUDA_TRACE");
    trace = e && *e == '1';
    if ((e = getenv("FAKECUDA_FAIL")))
        parse_fail(e);
}

/* the rule by which this call of `call` is to fail (FAKECUDA_FAIL), or NULL;
 * conv: the convolution the call is about, if any (named in the line) */
const fail_rule *injected(const char *call, const conv_desc *conv = nullptr)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    for (fail_rule &r : fail_rules)
        if (r.call == call && (!r.capture || captures_here) && ++r.seen == r.nth) {
            char on[96] = "";
            if (conv)
                snprintf(on, sizeof on, " on batch %d, %d x %dx%d -> %d", conv->n, conv->cin,
                         conv->h, conv->w, conv->cout);
            /* not a "fakecuda:" line: the tests fail on those */
            fprintf(stderr, "FAKECUDA_FAIL: call %ld of %s%s fails%s%s%s%s\n", r.nth, call,
                    r.capture ? " while capturing" : "", r.answer.empty() ? "" : " (",
                    r.answer.c_str(), r.answer.empty() ? "" : ")", on);
            return &r;
        }
    return nullptr;
}

cudaError_t ret(cudaError_t e)
{
    if (e != cudaSuccess)
        last_error = e;
    return e;
}

/* what a GPU would report as a fault in an operation: sticky */
void fault(const std::string &what, const std::string &why)
{
    fprintf(stderr, "fakecuda: %s: %s\n", what.c_str(), why.c_str());
    faults++;
    if (sticky == cudaSuccess)
        sticky = cudaErrorIllegalAddress;
}

const alloc_info *holder(const void *p, size_t bytes)
{
    auto it = allocs.upper_bound((uintptr_t)p);
    if (it == allocs.begin())
        return nullptr;
    --it;
    if ((uintptr_t)p >= it->first && (uintptr_t)p + bytes <= it->first + it->second.bytes)
        return &it->second;
    return nullptr;
}

/* [p, p + bytes) inside one live device allocation (pinned too if allowed) */
bool need(const void *p, size_t bytes, const std::string &what, const char *arg,
          bool pinned_ok = false)
{
    if (bytes == 0)
        return true;
    const alloc_info *a = holder(p, bytes);
    if (a && (pinned_ok || !a->pinned))
        return true;
    char why[256];
    const alloc_info *start = holder(p, 1);
    snprintf(why, sizeof why, "%s %p (+%zu bytes) %s", arg, p, bytes,
             start ? (start->pinned && !pinned_ok ? "is pinned host memory, not device memory"
                                                   : "runs past the end of its allocation")
                   : "is not in any live device allocation (freed, host memory, or wild)");
    fault(what, why);
    return false;
}

/* [a, a + an) and [b, b + bn) overlap: a fault */
bool overlap(const void *a, size_t an, const void *b, size_t bn, const std::string &what,
             const char *aname, const char *bname)
{
    const uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    if (!an || !bn || x + an <= y || y + bn <= x)
        return false;
    fault(what, std::string(aname) + " overlaps " + bname);
    return true;
}

bool is_pinned(const void *p, size_t bytes)
{
    const alloc_info *a = holder(p, bytes ? bytes : 1);
    return a && a->pinned;
}

bool is_device(const void *p)
{
    const alloc_info *a = holder(p, 1);
    return a && !a->pinned;
}

/* An operation about to run on stream s must not touch memory that
 * another stream's queued operations write (or write memory they read):
 * with nothing ordering the two streams (no wait by the host in between),
 * a GPU may run them in either order or at once. */
void check_races(fake_stream *s, const op &o)
{
    for (const touch &t : o.touches) {
        auto it = pending.find(t.base);
        if (it == pending.end())
            continue;
        for (auto &other : it->second)
            if (other.first != s &&
                (other.second.second > 0 || (t.write && other.second.first > 0))) {
                fault(o.what, std::string("races with work queued on another stream that ") +
                                  (other.second.second > 0 ? "writes" : "reads") +
                                  " the same allocation (no wait orders them)");
                return;
            }
    }
}

void run_op(const op &o)
{
    if (trace)
        fprintf(stderr, "fakecuda: run %s\n", o.what.c_str());
    ops_run++;
    if (sticky == cudaSuccess) /* after a fault nothing more runs, as on a GPU */
        o.run();
}

void flush(fake_stream *s)
{
    while (!s->q.empty()) {
        op o = std::move(s->q.front());
        s->q.pop_front();
        for (const touch &t : o.touches) {
            std::pair<int, int> &c = pending[t.base][s];
            (t.write ? c.second : c.first)--;
        }
        check_races(s, o);
        run_op(o);
    }
}

void flush_all(void)
{
    for (fake_stream *s : streams)
        flush(s);
}

/* at a synchronization: the pool gives back what it holds over its threshold */
void pool_settle(void) { the_pool.held = std::min<uint64_t>(the_pool.held, the_pool.keep); }

bool live_stream(cudaStream_t s)
{
    for (fake_stream *t : streams)
        if (t == s)
            return true;
    return false;
}

void invalidate(fake_stream *s, const char *why)
{
    if (!s->cap_bad)
        fprintf(stderr, "fakecuda: capture broken: %s\n", why);
    s->cap_bad = true;
}

/* A call the capturing thread may not make (global and thread-local modes):
 * its captures break, and the call fails. */
bool unsafe_in_capture(const char *call)
{
    if (!captures_here)
        return false;
    for (fake_stream *s : streams)
        if (s->cap && s->cap_thread == std::this_thread::get_id() &&
            s->cap_mode != cudaStreamCaptureModeRelaxed)
            invalidate(s, (std::string(call) + " by the capturing thread").c_str());
    return true;
}

/* A call that waits for the whole device: breaks every capture under way
 * (returns whether there was one), then runs every queue. */
bool device_wait(const char *call)
{
    bool broke = false;
    for (fake_stream *s : streams)
        if (s->cap) {
            invalidate(s, (std::string(call) + " (waits for the whole device) while capturing")
                              .c_str());
            broke = true;
        }
    flush_all();
    pool_settle();
    return broke;
}

/* the allocations of the pointers given (pointer, written) */
std::vector<touch> touched(const fakecuda_uses &uses)
{
    std::vector<touch> t;
    for (const auto &u : uses) {
        if (!u.first)
            continue;
        auto it = allocs.upper_bound((uintptr_t)u.first);
        if (it != allocs.begin() && (uintptr_t)u.first < (--it)->first + it->second.bytes)
            t.push_back(touch{it->first, u.second});
    }
    return t;
}

cudaError_t enqueue(cudaStream_t s, std::string what, std::function<void()> f,
                    const fakecuda_uses &uses = {})
{
    if (!live_stream(s)) {
        fault(what, "on a stream that does not exist (never made or destroyed)");
        return ret(cudaErrorInvalidResourceHandle);
    }
    if (sticky != cudaSuccess)
        return ret(sticky);
    op o{std::move(f), std::move(what), touched(uses)};
    if (s->cap) {
        s->cap->ops.push_back(std::move(o));
        return cudaSuccess;
    }
    for (const touch &t : o.touches) {
        std::pair<int, int> &c = pending[t.base][s];
        (t.write ? c.second : c.first)++;
    }
    s->q.push_back(std::move(o));
    return cudaSuccess;
}

/* pinned host memory, device memory, or device memory from the pool */
cudaError_t alloc(void **p, size_t bytes, bool pinned, bool pooled = false)
{
    if (!p)
        return ret(cudaErrorInvalidValue);
    if (sticky != cudaSuccess) /* after a fault every call fails, as on a GPU */
        return ret(sticky);
    /* the pool lends what it holds first, then grows */
    const size_t reuse = pooled ? std::min(bytes, the_pool.held) : 0;
    if (!pinned && dev_used + the_pool.held + (bytes - reuse) > dev_limit)
        return ret(cudaErrorMemoryAllocation);
    /* 256-byte aligned as cudaMalloc's, but exactly the size asked, so that
     * AddressSanitizer (sh tests/fuzz_asan.sh check) sees a kernel's
     * overrun at the first byte past it */
    void *m = NULL;
    if (posix_memalign(&m, 256, bytes ? bytes : 1) != 0)
        return ret(cudaErrorMemoryAllocation);
    memset(m, 0xff, bytes); /* undefined until written: NaN */
    allocs[(uintptr_t)m] = alloc_info{bytes, pinned, false, pooled};
    if (!pinned)
        dev_used += bytes;
    the_pool.held -= reuse;
    *p = m;
    return cudaSuccess;
}

/* into_pool: a stream-ordered free (the pool's memory stays the pool's) */
void release(void *p, bool into_pool = false)
{
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end())
        return;
    memset(p, 0xff, it->second.bytes);
    if (!it->second.pinned)
        dev_used -= it->second.bytes;
    if (into_pool && it->second.pooled)
        the_pool.held += it->second.bytes;
    allocs.erase(it);
    free(p);
}

/* a free's pointer: the start of a live allocation of that kind, not freed yet */
cudaError_t check_free(void *p, bool pinned, const char *call)
{
    auto it = allocs.find((uintptr_t)p);
    if (it == allocs.end() || it->second.pinned != pinned || it->second.freeing) {
        fault(call, it == allocs.end() ? "not the start of a live allocation (double free?)"
                    : it->second.freeing ? "already being freed (double free)"
                                         : "the wrong kind of memory for this free");
        return ret(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

} // namespace

/* ---- runtime ---- */

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected (fakecuda)";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered (fakecuda)";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorStreamCaptureUnsupported:
        return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnmatched: return "capture was not initiated in this stream";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    }
    return "unknown error";
}

cudaError_t cudaGetLastError(void)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (sticky != cudaSuccess)
        return sticky;
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    *count = devices;
    return devices > 0 ? cudaSuccess : ret(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int device)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    return device >= 0 && device < devices ? cudaSuccess : ret(cudaErrorInvalidDevice);
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    if (attr != cudaDevAttrMemoryPoolsSupported || device != 0)
        return ret(cudaErrorInvalidValue);
    *value = pools;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    *free_b = dev_limit - dev_used - the_pool.held;
    *total_b = dev_limit;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    if (unsafe_in_capture("cudaMalloc"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (injected("cudaMalloc"))
        return ret(cudaErrorMemoryAllocation);
    return alloc(p, bytes, false);
}

cudaError_t cudaFree(void *p)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (unsafe_in_capture("cudaFree"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (p && check_free(p, false, "cudaFree") != cudaSuccess)
        return cudaErrorInvalidValue;
    const bool broke = device_wait("cudaFree");
    if (p)
        release(p);
    return broke ? ret(cudaErrorStreamCaptureImplicit) : cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (unsafe_in_capture("cudaMallocHost"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (injected("cudaMallocHost"))
        return ret(cudaErrorMemoryAllocation);
    return alloc(p, bytes, true);
}

cudaError_t cudaFreeHost(void *p)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (unsafe_in_capture("cudaFreeHost"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (p && check_free(p, true, "cudaFreeHost") != cudaSuccess)
        return cudaErrorInvalidValue;
    const bool broke = device_wait("cudaFreeHost");
    if (p)
        release(p);
    return broke ? ret(cudaErrorStreamCaptureImplicit) : cudaSuccess;
}

cudaError_t cudaMallocAsync(void **p, size_t bytes, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (!pools)
        return ret(cudaErrorNotSupported);
    if (s->cap) { /* a memory node: legal on a GPU, never needed by our backend */
        invalidate(s, "cudaMallocAsync in a capture");
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    if (injected("cudaMallocAsync"))
        return ret(cudaErrorMemoryAllocation);
    return alloc(p, bytes, false, true);
}

cudaError_t cudaFreeAsync(void *p, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (!pools)
        return ret(cudaErrorNotSupported);
    if (s->cap) {
        invalidate(s, "cudaFreeAsync in a capture");
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    if (check_free(p, false, "cudaFreeAsync") != cudaSuccess)
        return cudaErrorInvalidValue;
    allocs[(uintptr_t)p].freeing = true;
    return enqueue(s, "cudaFreeAsync", [p] { release(p, true); }, {{p, true}});
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *pool, int device)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    if (device != 0)
        return ret(cudaErrorInvalidDevice);
    if (!pools || injected("cudaDeviceGetDefaultMemPool"))
        return ret(cudaErrorNotSupported);
    *pool = &the_pool;
    return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void *value)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (pool != &the_pool || !value || attr < 1 || attr > 4)
        return ret(cudaErrorInvalidValue);
    if (injected("cudaMemPoolSetAttribute"))
        return ret(cudaErrorNotSupported);
    if (attr == cudaMemPoolAttrReleaseThreshold)
        the_pool.keep = *(const uint64_t *)value;
    return cudaSuccess;
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t keep)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (pool != &the_pool)
        return ret(cudaErrorInvalidValue);
    the_pool.held = std::min(the_pool.held, keep);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (bytes == 0)
        return cudaSuccess;
    const char *what = kind == cudaMemcpyHostToDevice   ? "cudaMemcpyAsync HostToDevice"
                       : kind == cudaMemcpyDeviceToHost ? "cudaMemcpyAsync DeviceToHost"
                                                        : "cudaMemcpyAsync DeviceToDevice";
    if (kind == cudaMemcpyHostToDevice) {
        if (is_device(src)) {
            fault(what, "the source is device memory");
            return ret(cudaErrorInvalidValue);
        }
        if (is_pinned(src, bytes)) /* read when the copy runs */
            return enqueue(s, what, [=] {
                if (need(dst, bytes, what, "dst"))
                    memcpy(dst, src, bytes);
            }, {{src, false}, {dst, true}});
        if (s->cap) {
            invalidate(s, "a copy from pageable host memory in a capture");
            return ret(cudaErrorStreamCaptureUnsupported);
        }
        /* pageable: the data is taken now */
        auto data = std::make_shared<std::vector<char>>((const char *)src,
                                                        (const char *)src + bytes);
        return enqueue(s, what, [=] {
            if (need(dst, bytes, what, "dst"))
                memcpy(dst, data->data(), bytes);
        }, {{dst, true}});
    }
    if (kind == cudaMemcpyDeviceToHost) {
        if (is_device(dst)) {
            fault(what, "the destination is device memory");
            return ret(cudaErrorInvalidValue);
        }
        auto copy = [=] {
            if (need(src, bytes, what, "src"))
                memcpy(dst, src, bytes);
        };
        if (is_pinned(dst, bytes))
            return enqueue(s, what, copy, {{src, false}, {dst, true}});
        if (s->cap) {
            invalidate(s, "a copy to pageable host memory in a capture");
            return ret(cudaErrorStreamCaptureUnsupported);
        }
        /* pageable: the call returns once the stream has done it */
        cudaError_t e = enqueue(s, what, copy, {{src, false}});
        flush(s);
        return e != cudaSuccess ? e : sticky;
    }
    if (kind != cudaMemcpyDeviceToDevice)
        return ret(cudaErrorInvalidValue);
    return enqueue(s, what, [=] {
        if (need(src, bytes, what, "src") && need(dst, bytes, what, "dst"))
            memmove(dst, src, bytes);
    }, {{src, false}, {dst, true}});
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (bytes == 0)
        return live_stream(s) ? cudaSuccess : ret(cudaErrorInvalidResourceHandle);
    return enqueue(s, "cudaMemsetAsync", [=] {
        if (need(p, bytes, "cudaMemsetAsync", "ptr"))
            memset(p, value, bytes);
    }, {{p, true}});
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    setup();
    if (unsafe_in_capture("cudaStreamCreateWithFlags"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (injected("cudaStreamCreateWithFlags"))
        return ret(cudaErrorMemoryAllocation);
    if (flags != 0 && flags != cudaStreamNonBlocking)
        return ret(cudaErrorInvalidValue);
    *s = new fake_stream;
    streams.push_back(*s);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (unsafe_in_capture("cudaStreamDestroy"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (s->cap) {
        fault("cudaStreamDestroy", "the stream is capturing");
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    flush(s); /* its work completes */
    for (size_t i = 0; i < streams.size(); i++)
        if (streams[i] == s)
            streams.erase(streams.begin() + (long)i);
    delete s;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (unsafe_in_capture("cudaStreamSynchronize") || s->cap) {
        if (s->cap)
            invalidate(s, "cudaStreamSynchronize of a capturing stream");
        return ret(cudaErrorStreamCaptureUnsupported);
    }
    flush(s);
    pool_settle();
    return sticky != cudaSuccess ? ret(sticky) : cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (injected("cudaStreamBeginCapture"))
        return ret(cudaErrorStreamCaptureUnsupported);
    if (s->cap)
        return ret(cudaErrorInvalidValue);
    s->cap = new fake_graph;
    s->cap_bad = false;
    s->cap_thread = std::this_thread::get_id();
    s->cap_mode = mode;
    if (mode != cudaStreamCaptureModeRelaxed)
        captures_here++;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    *graph = nullptr;
    if (!live_stream(s))
        return ret(cudaErrorInvalidResourceHandle);
    if (!s->cap)
        return ret(cudaErrorStreamCaptureUnmatched);
    if (s->cap_thread != std::this_thread::get_id() &&
        s->cap_mode != cudaStreamCaptureModeRelaxed) {
        fault("cudaStreamEndCapture", "called by another thread than the one that began it");
        return ret(cudaErrorStreamCaptureUnmatched);
    }
    if (injected("cudaStreamEndCapture"))
        s->cap_bad = true; /* as if something in it could not be captured */
    if (s->cap_mode != cudaStreamCaptureModeRelaxed)
        captures_here--;
    fake_graph *g = s->cap;
    s->cap = nullptr;
    if (s->cap_bad) {
        delete g;
        return ret(cudaErrorStreamCaptureInvalidated);
    }
    *graph = g;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long)
{
    if (injected("cudaGraphInstantiate"))
        return ret(cudaErrorInvalidValue);
    if (!graph)
        return ret(cudaErrorInvalidValue);
    *exec = new fake_graph_exec{std::make_shared<const std::vector<op>>(graph->ops)};
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec; /* launches queued hold their own reference */
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (injected("cudaGraphLaunch"))
        return ret(cudaErrorInvalidValue);
    if (!exec)
        return ret(cudaErrorInvalidValue);
    op_list ops = exec->ops;
    fakecuda_uses uses;
    for (const op &o : *ops)
        for (const touch &t : o.touches)
            uses.push_back({(const void *)t.base, t.write});
    return enqueue(s, "cudaGraphLaunch (" + std::to_string(ops->size()) + " nodes)", [ops] {
        for (const op &o : *ops)
            run_op(o);
    }, uses);
}

/* ---- kernels (fakecuda.h) ---- */

cudaError_t fakecuda_launch(cudaStream_t s, const char *kernel, unsigned gx, unsigned gy,
                            unsigned gz, unsigned threads, size_t shmem,
                            std::function<void()> run, const fakecuda_uses &uses)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!gx || !gy || !gz || gy > 65535 || gz > 65535 || gx > 2147483647u || !threads ||
        threads > 1024 || shmem > 48 * 1024) {
        fprintf(stderr, "fakecuda: %s<<<(%u,%u,%u), %u, %zu>>>: invalid configuration\n", kernel,
                gx, gy, gz, threads, shmem);
        return ret(cudaErrorInvalidConfiguration);
    }
    if (injected(kernel)) /* queued, and faults when it runs */
        run = [] {
            if (sticky == cudaSuccess)
                sticky = cudaErrorLaunchFailure;
        };
    return enqueue(s, kernel, std::move(run), uses);
}

std::recursive_mutex &fakecuda_device_lock(void) { return mu; }

bool fakecuda_kernel_pointer(const void *p, const char *kernel, int arg)
{
    if (!p)
        return true;
    const alloc_info *a = holder(p, 1);
    if (a)
        return true;
    char why[128];
    snprintf(why, sizeof why, "argument %d (%p) points into no live device allocation", arg, p);
    fault(kernel, why);
    return false;
}

void fakecuda_kernel_failed(const char *kernel)
{
    fault(kernel, "the launch failed in the emulator (divergent __syncthreads, bad stack)");
}

long fakecuda_faults(void) { return faults; }

/* ---- the host memory the backend allocates itself ----
 * The module is linked with -Wl,--wrap=calloc,--wrap=realloc (Makefile.am),
 * so the backend's calloc and realloc (its convolution cache) come here and
 * FAKECUDA_FAIL can refuse them; the rest of the process is not touched. */
extern "C" {
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);

void *__wrap_calloc(size_t n, size_t size)
{
    return injected("calloc") ? nullptr : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return injected("realloc") ? nullptr : __real_realloc(p, size);
}
}

/* ---- library handles (cuBLAS's and cuDNN's alike) ---- */

namespace {

/* made by a thread that is not capturing */
template <typename H, typename S> S handle_create(H **h, const char *call, S ok, S refused)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (unsafe_in_capture(call) || injected(call))
        return refused;
    *h = new H;
    return ok;
}

/* destroyed by a thread that is not capturing: a wait for the whole device */
template <typename H, typename S> S handle_destroy(H *h, const char *call, S ok, S refused)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (unsafe_in_capture(call))
        return refused;
    device_wait(call);
    delete h;
    return ok;
}

} // namespace

/* ---- cuBLAS ---- */

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "unknown cuBLAS status";
}

cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    return handle_create(h, "cublasCreate", CUBLAS_STATUS_SUCCESS, CUBLAS_STATUS_NOT_INITIALIZED);
}

cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    return handle_destroy(h, "cublasDestroy", CUBLAS_STATUS_SUCCESS,
                          CUBLAS_STATUS_NOT_INITIALIZED);
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (bytes && !holder(ws, bytes))
        return CUBLAS_STATUS_INVALID_VALUE;
    h->ws = ws;
    h->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *a, int lda,
                           const float *b, int ldb, const float *beta, float *c, int ldc)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    if (m < 0 || n < 0 || k < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
        ldc < (m > 1 ? m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (injected("cublasSgemm"))
        return CUBLAS_STATUS_EXECUTION_FAILED;
    if (live_stream(h->stream) && h->stream->cap && !h->ws_bytes) {
        invalidate(h->stream, "cuBLAS in a capture without cublasSetWorkspace");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (m == 0 || n == 0)
        return CUBLAS_STATUS_SUCCESS;
    const float al = *alpha, be = *beta; /* host scalars: read at the call */
    const char *what = "cublasSgemm";
    const cudaError_t e = enqueue(h->stream, what, [=] {
        if ((k && ac && !need(a, ((size_t)lda * (ac - 1) + ar) * 4, what, "A")) ||
            (k && bc && !need(b, ((size_t)ldb * (bc - 1) + br) * 4, what, "B")) ||
            !need(c, ((size_t)ldc * (n - 1) + m) * 4, what, "C"))
            return;
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, a, lda, b, ldb,
                    be, c, ldc);
    }, {{a, false}, {b, false}, {c, true}});
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

/* ---- cuDNN ---- */

namespace {

/* The algorithms of each pass: number, workspace (0: none; 1: the size
 * below), deterministic, runs on tensor cores when the math allows, math
 * type reported by Find. */
struct algo_info {
    int algo, ws, det, tensor;
    cudnnMathType_t find_math;
};
/* heuristics: listed in this order, with the descriptor's math */
const algo_info heur[] = {{7, 0, 0, 0, CUDNN_FMA_MATH}, {1, 1, 1, 1, CUDNN_FMA_MATH},
                          {0, 0, 1, 0, CUDNN_FMA_MATH}};
/* Find: by time, each with its own math */
const algo_info found[] = {{2, 1, 1, 1, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION},
                           {7, 0, 0, 0, CUDNN_FMA_MATH},
                           {6, 1, 1, 1, CUDNN_TENSOR_OP_MATH},
                           {1, 1, 1, 1, CUDNN_FMA_MATH},
                           {0, 0, 1, 0, CUDNN_FMA_MATH}};

const algo_info *algo_of(int algo)
{
    for (const algo_info &a : found)
        if (a.algo == algo)
            return &a;
    return nullptr;
}

/* The convolution that the descriptors describe, or BAD_PARAM / NOT_SUPPORTED. */
cudnnStatus_t describe(const fake_tensor_desc *x, const fake_filter_desc *w,
                       const fake_conv_desc *c, const fake_tensor_desc *y, conv_desc *d)
{
    if (!x || !w || !c || !x->set || !w->set || !c->set)
        return CUDNN_STATUS_BAD_PARAM;
    if (c->pad_h != c->pad_w || c->u != c->v || c->dil_h != c->dil_w)
        return CUDNN_STATUS_NOT_SUPPORTED; /* the CPU backend's convolutions are square */
    if (x->c % c->groups || w->k % c->groups || w->c * c->groups != x->c)
        return CUDNN_STATUS_BAD_PARAM;
    memset(d, 0, sizeof *d);
    d->n = x->n;
    d->cin = x->c;
    d->h = x->h;
    d->w = x->w;
    d->cout = w->k;
    d->kh = w->h;
    d->kw = w->w;
    d->stride = c->u;
    d->pad = c->pad_h;
    d->dil = c->dil_h;
    d->groups = c->groups;
    d->oh = (d->h + 2 * d->pad - d->dil * (d->kh - 1) - 1) / d->stride + 1;
    d->ow = (d->w + 2 * d->pad - d->dil * (d->kw - 1) - 1) / d->stride + 1;
    if (d->oh <= 0 || d->ow <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    if (y && (!y->set || y->n != d->n || y->c != d->cout || y->h != d->oh || y->w != d->ow))
        return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

size_t ws_bytes(const conv_desc *d, int algo)
{
    const algo_info *a = algo_of(algo);
    if (!a || !a->ws)
        return 0;
    /* not a multiple of 4, and more for algorithm 2 and 6 than 1 */
    return (size_t)d->n * d->oh * d->ow * 4 * (algo == 1 ? 1 : 2) + 36;
}

size_t x_bytes(const conv_desc *d) { return (size_t)d->n * d->cin * d->h * d->w * 4; }
size_t y_bytes(const conv_desc *d) { return (size_t)d->n * d->cout * d->oh * d->ow * 4; }
size_t w_bytes(const conv_desc *d)
{
    return (size_t)d->cout * (d->cin / d->groups) * d->kh * d->kw * 4;
}

/* The algorithms of a query, with FAKECUDA_FAIL's wrong answer (see the top) */
template <typename P>
cudnnStatus_t list(const conv_desc *d, const fake_conv_desc *c, bool find, int asked, int *count,
                   P *res, const std::string &answer)
{
    const algo_info *from = find ? found : heur;
    const int n = find ? (int)(sizeof found / sizeof *found) : (int)(sizeof heur / sizeof *heur);
    if (asked < 1)
        return CUDNN_STATUS_BAD_PARAM;
    *count = 0;
    for (int i = 0; i < n && *count < asked; i++) {
        P &r = res[(*count)++];
        memset(&r, 0, sizeof r);
        r.algo = from[i].algo;
        r.status = CUDNN_STATUS_SUCCESS;
        r.time = find ? 0.1f * (float)(i + 1) : -1.f;
        r.memory = ws_bytes(d, from[i].algo);
        r.determinism = from[i].det ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
        r.mathType = find ? from[i].find_math : c->math;
        if (answer == "unsupported" || (answer == "nondeterministic" && from[i].det)) {
            r.status = CUDNN_STATUS_NOT_SUPPORTED; /* as cuDNN lists one: no time, no memory */
            r.time = -1.f;
            r.memory = 0;
        }
        if (answer == "less")
            r.memory /= 2;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* [p, p + bytes) rounded to TF32 (10 mantissa bits, nearest even), as
 * tensor cores read it, into v */
const float *tf32_copy(const float *p, size_t bytes, std::vector<float> &v)
{
    v.assign(p, p + bytes / 4);
    for (float &f : v) {
        uint32_t u;
        memcpy(&u, &f, 4);
        if ((u & 0x7f800000u) != 0x7f800000u)
            u = (u + 0xfffu + ((u >> 13) & 1u)) & ~0x1fffu;
        memcpy(&f, &u, 4);
    }
    return v.data();
}

bool on_tensor_cores(const fake_conv_desc *c, int algo)
{
    const algo_info *a = algo_of(algo);
    return a && a->tensor && c->math != CUDNN_FMA_MATH;
}

/* out = alpha * t + beta * out (beta 0: out is not read, as cuDNN) */
void blend(float *out, const std::vector<float> &t, float alpha, float beta)
{
    for (size_t i = 0; i < t.size(); i++)
        out[i] = beta == 0.f ? alpha * t[i] : alpha * t[i] + beta * out[i];
}

/* What a pass reads and writes: the forward x and w into y, the backward
 * data w and dy into dx, the backward filter x and dy into dw. */
enum pass { FWD, BWD_DATA, BWD_FILTER };

/* One pass, checked at the call and run in the handle's stream: a and b
 * its inputs in the order above, out its output. */
cudnnStatus_t conv_pass(pass kind, const char *what, cudnnHandle_t h, const void *alpha,
                        const fake_tensor_desc *xd, const fake_filter_desc *wd,
                        const fake_conv_desc *cd, const fake_tensor_desc *yd, int algo,
                        const float *a, const float *b, float *out, void *ws, size_t ws_given,
                        const void *beta)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    conv_desc d;
    cudnnStatus_t st = describe(xd, wd, cd, yd, &d);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (!algo_of(algo))
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (injected(what, &d))
        return CUDNN_STATUS_EXECUTION_FAILED;
    const size_t need_ws = ws_bytes(&d, algo);
    if (ws_given < need_ws) {
        fprintf(stderr, "fakecuda: %s: algorithm %d needs %zu bytes of workspace, %zu given\n",
                what, algo, need_ws, ws_given);
        return CUDNN_STATUS_BAD_PARAM;
    }
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const bool tf32 = on_tensor_cores(cd, algo);
    const size_t xb = x_bytes(&d), wb = w_bytes(&d), yb = y_bytes(&d);
    const size_t ab = kind == BWD_DATA ? wb : xb, bb = kind == FWD ? wb : yb;
    const size_t outb = kind == FWD ? yb : kind == BWD_DATA ? xb : wb;
    const char *aname = kind == BWD_DATA ? "w" : "x", *bname = kind == FWD ? "w" : "dy";
    const cudaError_t e = enqueue(h->stream, what, [=] {
        /* the inputs, the output, the workspace: in place and apart (the
         * workspace is then all NaN, as an algorithm leaves it) */
        if (!need(a, ab, what, aname) || !need(b, bb, what, bname) ||
            !need(out, outb, what, "the output") || !need(ws, need_ws, what, "workspace") ||
            overlap(out, outb, a, ab, what, "the output", "an input") ||
            overlap(out, outb, b, bb, what, "the output", "an input") ||
            overlap(ws, need_ws, out, outb, what, "the workspace", "the output") ||
            overlap(ws, need_ws, a, ab, what, "the workspace", "an input") ||
            overlap(ws, need_ws, b, bb, what, "the workspace", "an input"))
            return;
        if (need_ws)
            memset(ws, 0xff, need_ws);
        /* one operation runs at a time (mu): the buffers are reused */
        static std::vector<float> work, t, ra, rb, zeros;
        const float *ia = tf32 ? tf32_copy(a, ab, ra) : a;
        const float *ib = tf32 ? tf32_copy(b, bb, rb) : b;
        const backend *cpu = backend_cpu();
        work.resize(cpu->conv_work_size(&d) + 1);
        t.assign(outb / 4, 0.f);
        if (kind == FWD) {
            cpu->conv2d_forward(&d, ia, ib, NULL, t.data(), 0, work.data());
        } else if (kind == BWD_DATA) { /* x is not read for dx alone: t stands in */
            cpu->conv2d_backward(&d, t.data(), ia, ib, t.data(), NULL, NULL, work.data(), 0);
        } else { /* the backward filter has no weights; the CPU's depthwise code wants some */
            zeros.assign(wb / 4, 0.f);
            cpu->conv2d_backward(&d, ia, zeros.data(), ib, NULL, t.data(), NULL, work.data(), 1);
        }
        blend(out, t, al, be);
    }, {{a, false}, {b, false}, {out, true}, {ws, true}});
    return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

} // namespace

const char *cudnnGetErrorString(cudnnStatus_t s)
{
    switch (s) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    }
    return "unknown cuDNN status";
}

cudnnStatus_t cudnnCreate(cudnnHandle_t *h)
{
    return handle_create(h, "cudnnCreate", CUDNN_STATUS_SUCCESS, CUDNN_STATUS_NOT_INITIALIZED);
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t h)
{
    return handle_destroy(h, "cudnnDestroy", CUDNN_STATUS_SUCCESS, CUDNN_STATUS_INTERNAL_ERROR);
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}

namespace {

template <typename D> cudnnStatus_t make_desc(D **d)
{
    *d = new D;
    return CUDNN_STATUS_SUCCESS;
}

/* (under AddressSanitizer, tests/fuzz_asan.sh, a use after this is caught) */
template <typename D> cudnnStatus_t drop_desc(D *d)
{
    delete d;
    return CUDNN_STATUS_SUCCESS;
}

/* a tensor (n, c, h, w) or filter (k, c, h, w) descriptor: NCHW float only */
template <typename D>
cudnnStatus_t set_4d(D *d, cudnnTensorFormat_t f, cudnnDataType_t t, int a, int b, int c, int e)
{
    if (f != CUDNN_TENSOR_NCHW || t != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_NOT_SUPPORTED;
    if (a <= 0 || b <= 0 || c <= 0 || e <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    *d = D{1, a, b, c, e};
    return CUDNN_STATUS_SUCCESS;
}

} // namespace

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { return make_desc(d); }

cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return drop_desc(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return drop_desc(d); }
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d)
{
    return drop_desc(d);
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f,
                                         cudnnDataType_t t, int n, int c, int h, int w)
{
    return set_4d(d, f, t, n, c, h, w);
}

cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { return make_desc(d); }

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t,
                                         cudnnTensorFormat_t f, int k, int c, int h, int w)
{
    return set_4d(d, f, t, k, c, h, w);
}

cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d)
{
    return make_desc(d);
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h,
                                              int pad_w, int u, int v, int dil_h, int dil_w,
                                              cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute)
{
    if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0)
        return CUDNN_STATUS_BAD_PARAM;
    if (mode != CUDNN_CROSS_CORRELATION || compute != CUDNN_DATA_FLOAT)
        return CUDNN_STATUS_NOT_SUPPORTED; /* what the CPU backend computes */
    d->set = 1;
    d->pad_h = pad_h;
    d->pad_w = pad_w;
    d->u = u;
    d->v = v;
    d->dil_h = dil_h;
    d->dil_w = dil_w;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups)
{
    if (groups < 1)
        return CUDNN_STATUS_BAD_PARAM;
    d->groups = groups;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m)
{
    if (m < CUDNN_DEFAULT_MATH || m > CUDNN_FMA_MATH)
        return CUDNN_STATUS_BAD_PARAM;
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(cudnnConvolutionDescriptor_t c,
                                                    cudnnTensorDescriptor_t x,
                                                    cudnnFilterDescriptor_t w, int *n, int *k,
                                                    int *h, int *wo)
{
    conv_desc d;
    cudnnStatus_t st = describe(x, w, c, nullptr, &d);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    *n = d.n;
    *k = d.cout;
    *h = d.oh;
    *wo = d.ow;
    return CUDNN_STATUS_SUCCESS;
}

namespace {

/* Find runs every algorithm on buffers of its own: as on a GPU, the calling
 * thread may not be capturing, and it waits for the device. */
bool find_allowed(const char *call)
{
    if (unsafe_in_capture(call))
        return false;
    return !device_wait(call);
}

} // namespace

#define FAKECUDNN_QUERY(fn, find, xx, ww, yy, Perf)                                            \
    {                                                                                          \
        std::lock_guard<std::recursive_mutex> l(mu);                                           \
        conv_desc d;                                                                           \
        cudnnStatus_t st = describe(xx, ww, c, yy, &d);                                        \
        if (st != CUDNN_STATUS_SUCCESS)                                                        \
            return st;                                                                         \
        const fail_rule *r = injected(fn, &d);                                                 \
        if (r && r->answer.empty())                                                            \
            return CUDNN_STATUS_INTERNAL_ERROR;                                                \
        if (find && !find_allowed(fn))                                                         \
            return CUDNN_STATUS_INTERNAL_ERROR;                                                \
        (void)h;                                                                               \
        return list<Perf>(&d, c, find, asked, count, res, r ? r->answer : std::string());      \
    }

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                     cudnnFilterDescriptor_t w,
                                                     cudnnConvolutionDescriptor_t c,
                                                     cudnnTensorDescriptor_t y, int asked,
                                                     int *count,
                                                     cudnnConvolutionFwdAlgoPerf_t *res)
FAKECUDNN_QUERY("cudnnGetConvolutionForwardAlgorithm_v7", false, x, w, y,
                cudnnConvolutionFwdAlgoPerf_t)

cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(
    cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int asked, int *count,
    cudnnConvolutionBwdDataAlgoPerf_t *res)
FAKECUDNN_QUERY("cudnnGetConvolutionBackwardDataAlgorithm_v7", false, dx, w, dy,
                cudnnConvolutionBwdDataAlgoPerf_t)

cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int asked, int *count,
    cudnnConvolutionBwdFilterAlgoPerf_t *res)
FAKECUDNN_QUERY("cudnnGetConvolutionBackwardFilterAlgorithm_v7", false, x, dw, dy,
                cudnnConvolutionBwdFilterAlgoPerf_t)

cudnnStatus_t cudnnFindConvolutionForwardAlgorithm(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                   cudnnFilterDescriptor_t w,
                                                   cudnnConvolutionDescriptor_t c,
                                                   cudnnTensorDescriptor_t y, int asked,
                                                   int *count,
                                                   cudnnConvolutionFwdAlgoPerf_t *res)
FAKECUDNN_QUERY("cudnnFindConvolutionForwardAlgorithm", true, x, w, y,
                cudnnConvolutionFwdAlgoPerf_t)

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithm(
    cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, int asked, int *count,
    cudnnConvolutionBwdDataAlgoPerf_t *res)
FAKECUDNN_QUERY("cudnnFindConvolutionBackwardDataAlgorithm", true, dx, w, dy,
                cudnnConvolutionBwdDataAlgoPerf_t)

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithm(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw, int asked, int *count,
    cudnnConvolutionBwdFilterAlgoPerf_t *res)
FAKECUDNN_QUERY("cudnnFindConvolutionBackwardFilterAlgorithm", true, x, dw, dy,
                cudnnConvolutionBwdFilterAlgoPerf_t)

#define FAKECUDNN_WS(xx, ww, yy)                                                               \
    {                                                                                          \
        conv_desc d;                                                                           \
        cudnnStatus_t st = describe(xx, ww, c, yy, &d);                                        \
        if (st != CUDNN_STATUS_SUCCESS)                                                        \
            return st;                                                                         \
        if (!algo_of(algo))                                                                    \
            return CUDNN_STATUS_NOT_SUPPORTED;                                                 \
        const fail_rule *r = injected(__func__, &d);                                           \
        if (r && r->answer != "more")                                                          \
            return CUDNN_STATUS_INTERNAL_ERROR;                                                \
        (void)h;                                                                               \
        *bytes = (r ? 4 : 1) * ws_bytes(&d, algo);                                             \
        return CUDNN_STATUS_SUCCESS;                                                           \
    }

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t h, cudnnTensorDescriptor_t x,
                                                      cudnnFilterDescriptor_t w,
                                                      cudnnConvolutionDescriptor_t c,
                                                      cudnnTensorDescriptor_t y,
                                                      cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes)
FAKECUDNN_WS(x, w, y)

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(
    cudnnHandle_t h, cudnnFilterDescriptor_t w, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t algo,
    size_t *bytes)
FAKECUDNN_WS(dx, w, dy)

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(
    cudnnHandle_t h, cudnnTensorDescriptor_t x, cudnnTensorDescriptor_t dy,
    cudnnConvolutionDescriptor_t c, cudnnFilterDescriptor_t dw,
    cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes)
FAKECUDNN_WS(x, dw, dy)

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha,
                                      cudnnTensorDescriptor_t xd, const void *x,
                                      cudnnFilterDescriptor_t wd, const void *w,
                                      cudnnConvolutionDescriptor_t c,
                                      cudnnConvolutionFwdAlgo_t algo, void *ws, size_t ws_bytes,
                                      const void *beta, cudnnTensorDescriptor_t yd, void *y)
{
    return conv_pass(FWD, "cudnnConvolutionForward", h, alpha, xd, wd, c, yd, algo,
                     (const float *)x, (const float *)w, (float *)y, ws, ws_bytes, beta);
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha,
                                           cudnnFilterDescriptor_t wd, const void *w,
                                           cudnnTensorDescriptor_t dyd, const void *dy,
                                           cudnnConvolutionDescriptor_t c,
                                           cudnnConvolutionBwdDataAlgo_t algo, void *ws,
                                           size_t ws_bytes, const void *beta,
                                           cudnnTensorDescriptor_t dxd, void *dx)
{
    return conv_pass(BWD_DATA, "cudnnConvolutionBackwardData", h, alpha, dxd, wd, c, dyd, algo,
                     (const float *)w, (const float *)dy, (float *)dx, ws, ws_bytes, beta);
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha,
                                             cudnnTensorDescriptor_t xd, const void *x,
                                             cudnnTensorDescriptor_t dyd, const void *dy,
                                             cudnnConvolutionDescriptor_t c,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void *ws,
                                             size_t ws_bytes, const void *beta,
                                             cudnnFilterDescriptor_t dwd, void *dw)
{
    return conv_pass(BWD_FILTER, "cudnnConvolutionBackwardFilter", h, alpha, xd, dwd, c, dyd,
                     algo, (const float *)x, (const float *)dy, (float *)dw, ws, ws_bytes, beta);
}

/* db (1,c,1,1) = alpha * sum of dy (n,c,h,w) over n, h, w + beta * db */
cudnnStatus_t cudnnConvolutionBackwardBias(cudnnHandle_t h, const void *alpha,
                                           cudnnTensorDescriptor_t dyd, const void *dy,
                                           const void *beta, cudnnTensorDescriptor_t dbd,
                                           void *db)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!dyd->set || !dbd->set || dbd->n != 1 || dbd->c != dyd->c || dbd->h != 1 || dbd->w != 1)
        return CUDNN_STATUS_BAD_PARAM;
    const fake_tensor_desc t = *dyd;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const char *what = "cudnnConvolutionBackwardBias";
    const cudaError_t e = enqueue(h->stream, what, [=] {
        const size_t hw = (size_t)t.h * t.w;
        if (!need(dy, (size_t)t.n * t.c * hw * 4, what, "dy") ||
            !need(db, (size_t)t.c * 4, what, "db"))
            return;
        const float *g = (const float *)dy;
        float *o = (float *)db;
        for (int c = 0; c < t.c; c++) {
            double s = 0.;
            for (int i = 0; i < t.n; i++)
                for (size_t j = 0; j < hw; j++)
                    s += g[((size_t)i * t.c + c) * hw + j];
            o[c] = be == 0.f ? al * (float)s : al * (float)s + be * o[c];
        }
    }, {{dy, false}, {db, true}});
    return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

/* c = alpha * a + beta * c, a (1,c,1,1) or c's shape */
cudnnStatus_t cudnnAddTensor(cudnnHandle_t h, const void *alpha, cudnnTensorDescriptor_t ad,
                             const void *a, const void *beta, cudnnTensorDescriptor_t cd,
                             void *c)
{
    std::lock_guard<std::recursive_mutex> l(mu);
    if (!ad->set || !cd->set || ad->c != cd->c ||
        !((ad->n == 1 && ad->h == 1 && ad->w == 1) ||
          (ad->n == cd->n && ad->h == cd->h && ad->w == cd->w)))
        return CUDNN_STATUS_BAD_PARAM;
    const fake_tensor_desc at = *ad, ct = *cd;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const char *what = "cudnnAddTensor";
    const cudaError_t e = enqueue(h->stream, what, [=] {
        const size_t hw = (size_t)ct.h * ct.w, total = (size_t)ct.n * ct.c * hw;
        const bool bcast = at.n == 1 && at.h == 1 && at.w == 1 && total != (size_t)at.c;
        if (!need(a, (bcast ? (size_t)at.c : total) * 4, what, "A") ||
            !need(c, total * 4, what, "C"))
            return;
        const float *x = (const float *)a;
        float *y = (float *)c;
        for (size_t i = 0; i < total; i++) {
            const float v = bcast ? x[i / hw % ct.c] : x[i];
            y[i] = be == 0.f ? al * v : al * v + be * y[i];
        }
    }, {{a, false}, {c, true}});
    return e == cudaSuccess ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}
