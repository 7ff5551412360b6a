#include "session/session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tensor/profile.h"
#include "util/err.h"

#ifndef RMINAS_SRCDATA
#define RMINAS_SRCDATA "examples/data"
#endif
#ifndef RMINAS_PKGDATA
#define RMINAS_PKGDATA "/usr/local/share/rminas"
#endif

int session_init(session *s)
{
    memset(s, 0, sizeof *s);
    s->be = backend_cpu();
    s->threads = backend_cpu_threads();
    s->jobs = 1;
    s->speculate = 1;
    rmi_settings_default(&s->rmi);
    rng_seed(&s->sample_rng, 0);
    snprintf(s->bench_column, sizeof s->bench_column, "cifar10_test");
    search_opts_default(&s->search_o);
    s->sp = &space_nb201;
    return 0;
}

void session_free(session *s)
{
    dataset_free(&s->train);
    dataset_free(&s->test);
    model_free(&s->teacher);
    model_free(&s->net);
    bench_free(&s->bench);
    bench_free(&s->bench_eval);
    search_free(&s->srch);
    rmi_data_free(&s->data);
    rmi_eval_free(&s->eval);
    free(s->rank);
    free(s->rank_curve);
    free(s->pre);
    if (s->state_lock > 0)
        close(s->state_lock);
}

/* ---- settings ---- */

const setting_info session_settings[] = {
    {"batch", "RMI batch size B (32)"},
    {"benchmark_column", "benchmark column for accuracies and correlations (cifar10_test)"},
    {"beta", "weight of the CKA terms in the RMI loss, 0..1 (0.8)"},
    {"budget", "evaluations of random / rea / reinforce searches (100)"},
    {"cap", "RMI-NAS: stop after this many evaluations, 0 = no cap (0)"},
    {"centered", "1: centered CKA as the released code; 0: uncentered, paper Eq. 3 (1)"},
    {"conv", "CPU convolutions: winograd2 (our Winograd F(2x2,3x3) for 3x3 stride 1, "
             "oneDNN direct for the rest), winograd4 (as winograd2 with our F(4x4,3x3) "
             "from 16x16 outputs up), dnnl (oneDNN direct), winograd (oneDNN Winograd, "
             "AVX-512 only) or im2col (BLAS); depthwise: our own loops under im2col, and "
             "for the backward of those wider than 3x3 or dilated under all (winograd2)"},
    {"data_seed", "seed of the image pool and its augmentation (0)"},
    {"device", "compute backend: cpu or cuda (cpu)"},
    {"evaluator", "search evaluator: rmi (the RMI score) or benchmark (table lookup) (rmi)"},
    {"gamma", "pool multiplier: the teacher ranks gamma*batch images (16)"},
    {"init_seed", "seed of the student's initialization (0)"},
    {"jobs", "architectures scored at once by rank and by a search ahead of its steps (1)"},
    {"lr", "student learning rate, constant (0.1)"},
    {"max_flops", "constraint: reject architectures over this many MACs, 0 = none (0)"},
    {"max_params", "constraint: reject architectures over this many parameters, 0 = none (0)"},
    {"momentum", "student SGD momentum (0.9)"},
    {"n_collect", "RMI-NAS: stop after this many expanded-phase successes (100)"},
    {"n_fitting", "RMI-NAS: unscored candidates ranked by the forest per iteration (1000)"},
    {"n_warm", "RMI-NAS: random architectures scored in the warm-up (100)"},
    {"population", "REA population (10)"},
    {"quantile", "RMI-NAS: threshold tau = this quantile of the warm-up scores (0.05)"},
    {"rl_lr", "REINFORCE: Adam step size on the policy logits (0.01)"},
    {"rl_momentum", "REINFORCE: reward baseline moving-average momentum (0.9)"},
    {"sample_size", "REA tournament size (3)"},
    {"score_log", "CSV log of RMI scores under the current settings (rank_log: the older "
                  "name); rank and the search's RMI evaluator take scores from it and add "
                  "theirs (none)"},
    {"seed", "seed for sampling architectures and searching (0)"},
    {"speculate", "with jobs > 1, RMI-NAS's expansion scores its next picks under both "
                  "outcomes of the earlier ones not yet scored, the likeliest first: 1 or 0 "
                  "(1)"},
    {"state", "search state file, saved after every evaluation; none = not saved (none)"},
    {"steps", "training steps per evaluation; the score is the loss of the last (150)"},
    {"teacher_bn", "teacher batch norm while selecting: train (released code) or eval (train)"},
    {"threads", "CPU threads, 0 = all cores (a CPU score depends on it; the score log "
                "records it)"},
    {"top", "RMI-NAS: the best TOP good architectures vote per edge, 0 = half (50)"},
    {"trees", "RMI-NAS: trees of the random forest (30)"},
    {"wd", "student weight decay (5e-4)"},
};
const int session_nsettings = sizeof session_settings / sizeof session_settings[0];

int session_parse_long(const char *key, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        return rm_error("%s must be an integer from %ld to %ld, got '%s'", key, lo, hi, v);
    *out = x;
    return 0;
}

int session_parse_double(const char *key, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi))
        return rm_error("%s must be a number from %g to %g, got '%s'", key, lo, hi, v);
    *out = x;
    return 0;
}

int session_set(session *s, const char *key, const char *v)
{
    rmi_settings r = s->rmi;
    long l;
    double d;
    if (!strcmp(key, "device"))
        return session_set_device(s, v);
    if (!strcmp(key, "conv"))
        return backend_cpu_set_conv(v);
    if (!strcmp(key, "threads")) {
        if (session_parse_long(key, v, 0, 1024, &l) < 0)
            return -1;
        return session_set_threads(s, (int)l);
    }
    if (!strcmp(key, "jobs")) {
        if (session_parse_long(key, v, 1, RANK_MAX_JOBS, &l) < 0)
            return -1;
        s->jobs = (int)l;
        return 0;
    }
    if (!strcmp(key, "speculate")) {
        if (session_parse_long(key, v, 0, 1, &l) < 0)
            return -1;
        s->speculate = (int)l;
        return 0;
    }
    if (!strcmp(key, "seed")) {
        if (session_parse_long(key, v, 0, 0x7fffffffL, &l) < 0)
            return -1;
        s->seed = (uint64_t)l;
        rng_seed(&s->sample_rng, s->seed);
        return 0;
    }
    if (!strcmp(key, "benchmark_column")) {
        /* a column of either loaded table (the 12-epoch one has validation
         * columns the ground truth lacks) */
        if (s->bench.nrows && bench_column(&s->bench, v) < 0) {
            if (!s->bench_eval.nrows || bench_column(&s->bench_eval, v) < 0)
                return rm_error_context("benchmark_column");
            rm_clear_error();
        } else if (!s->bench.nrows && s->bench_eval.nrows && bench_column(&s->bench_eval, v) < 0)
            return rm_error_context("benchmark_column");
        if (strlen(v) >= sizeof s->bench_column)
            return rm_error("column name too long");
        snprintf(s->bench_column, sizeof s->bench_column, "%s", v);
        return 0;
    }
    if (!strcmp(key, "batch")) {
        if (session_parse_long(key, v, 2, 4096, &l) < 0)
            return -1;
        r.batch = (int)l;
    } else if (!strcmp(key, "gamma")) {
        if (session_parse_long(key, v, 1, 1024, &l) < 0)
            return -1;
        r.gamma = (int)l;
    } else if (!strcmp(key, "steps")) {
        if (session_parse_long(key, v, 1, 1000000, &l) < 0)
            return -1;
        r.steps = (int)l;
    } else if (!strcmp(key, "centered")) {
        if (session_parse_long(key, v, 0, 1, &l) < 0)
            return -1;
        r.centered = (int)l;
    } else if (!strcmp(key, "data_seed")) {
        if (session_parse_long(key, v, 0, 0x7fffffffL, &l) < 0)
            return -1;
        r.data_seed = (uint64_t)l;
    } else if (!strcmp(key, "init_seed")) {
        if (session_parse_long(key, v, 0, 0x7fffffffL, &l) < 0)
            return -1;
        r.init_seed = (uint64_t)l;
    } else if (!strcmp(key, "teacher_bn")) {
        if (strcmp(v, "train") && strcmp(v, "eval"))
            return rm_error("teacher_bn must be train or eval, got '%s'", v);
        r.teacher_bn = !strcmp(v, "train");
    } else if (!strcmp(key, "beta")) {
        if (session_parse_double(key, v, 0, 1, &d) < 0)
            return -1;
        r.beta = d;
    } else if (!strcmp(key, "lr")) {
        if (session_parse_double(key, v, 0, 100, &d) < 0)
            return -1;
        r.lr = d;
    } else if (!strcmp(key, "momentum")) {
        if (session_parse_double(key, v, 0, 1, &d) < 0)
            return -1;
        r.momentum = d;
    } else if (!strcmp(key, "wd")) {
        if (session_parse_double(key, v, 0, 1, &d) < 0)
            return -1;
        r.wd = d;
    } else {
        int rc = session_search_set(s, key, v);
        if (rc == -2)
            return rm_error("unknown setting '%s' ('show settings' lists them)", key);
        return rc;
    }
    s->rmi = r;
    return 0;
}

int session_get(const session *s, const char *key, char *out, size_t size)
{
    const rmi_settings *r = &s->rmi;
    if (!strcmp(key, "device"))
        snprintf(out, size, "%s", s->be->name);
    else if (!strcmp(key, "threads"))
        snprintf(out, size, "%d", s->threads);
    else if (!strcmp(key, "jobs"))
        snprintf(out, size, "%d", s->jobs);
    else if (!strcmp(key, "speculate"))
        snprintf(out, size, "%d", s->speculate);
    else if (!strcmp(key, "conv"))
        snprintf(out, size, "%s", backend_cpu_conv());
    else if (!strcmp(key, "seed"))
        snprintf(out, size, "%llu", (unsigned long long)s->seed);
    else if (!strcmp(key, "benchmark_column"))
        snprintf(out, size, "%s", s->bench_column);
    else if (!strcmp(key, "batch"))
        snprintf(out, size, "%d", r->batch);
    else if (!strcmp(key, "gamma"))
        snprintf(out, size, "%d", r->gamma);
    else if (!strcmp(key, "steps"))
        snprintf(out, size, "%d", r->steps);
    else if (!strcmp(key, "centered"))
        snprintf(out, size, "%d", r->centered);
    else if (!strcmp(key, "data_seed"))
        snprintf(out, size, "%llu", (unsigned long long)r->data_seed);
    else if (!strcmp(key, "init_seed"))
        snprintf(out, size, "%llu", (unsigned long long)r->init_seed);
    else if (!strcmp(key, "teacher_bn"))
        snprintf(out, size, "%s", r->teacher_bn ? "train" : "eval");
    else if (!strcmp(key, "beta"))
        snprintf(out, size, "%g", r->beta);
    else if (!strcmp(key, "lr"))
        snprintf(out, size, "%g", r->lr);
    else if (!strcmp(key, "momentum"))
        snprintf(out, size, "%g", r->momentum);
    else if (!strcmp(key, "wd"))
        snprintf(out, size, "%g", r->wd);
    else {
        int rc = session_search_get(s, key, out, size);
        return rc == -2 ? rm_error("unknown setting '%s'", key) : rc;
    }
    return 0;
}

int session_set_device(session *s, const char *name)
{
    const backend *be = backend_get(name);
    if (!be)
        return -1;
    if (be != backend_unprofiled(s->be) && s->teacher.g)
        return rm_error("the teacher is loaded on %s: choose the device before loading the "
                        "teacher (--device, or set device first)", s->be->name);
    if (backend_profile_enabled() && !(be = backend_profiled(be)))
        return -1;
    s->be = be;
    return 0;
}

int session_set_profile(session *s, int on)
{
    if (on) {
        const backend *p = backend_profiled(s->be);
        if (!p)
            return -1;
        s->be = p;
    } else {
        s->be = backend_unprofiled(s->be);
    }
    backend_profile_enable(on);
    return 0;
}

int session_set_threads(session *s, int n)
{
    if (n < 0 || n > 1024)
        return rm_error("threads must be between 0 (all cores) and 1024, got %d", n);
    backend_cpu_set_threads(n);
    s->threads = backend_cpu_threads();
    return 0;
}

int session_load_dataset(session *s, const char *name, const char *dir)
{
    int c100 = 0, im16 = 0;
    if (!strcmp(name, "cifar100"))
        c100 = 1;
    else if (!strcmp(name, "imagenet16-120") || !strcmp(name, "imagenet16"))
        im16 = 1;
    else if (strcmp(name, "cifar10"))
        return rm_error("unknown dataset '%s' (known: cifar10, cifar100, imagenet16-120)", name);
    char bundled[1024];
    if (!dir) {
        if (c100 || im16 || session_find_data("cifar10-mini", bundled, sizeof bundled) < 0)
            return rm_error("no bundled %s data; give the directory of its binary batches",
                            name);
        dir = bundled;
    }
    dataset tr, te;
    if ((im16 ? imagenet16_load(dir, 1, &tr) : cifar_load(dir, c100, 1, &tr)) < 0)
        return -1;
    if ((im16 ? imagenet16_load(dir, 0, &te) : cifar_load(dir, c100, 0, &te)) < 0) {
        dataset_free(&tr);
        return -1;
    }
    dataset_free(&s->train);
    dataset_free(&s->test);
    session_drop_batch(s);
    s->train = tr;
    s->test = te;
    s->cost_ok = 0; /* the networks' classifier follows the dataset */
    snprintf(s->data_name, sizeof s->data_name, "%s", im16 ? "imagenet16-120" : name);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", dir);
    return 0;
}

int session_find_data(const char *name, char *out, size_t size)
{
    const char *env = getenv("RMINAS_DATA");
    const char *dirs[3] = {env, RMINAS_SRCDATA, RMINAS_PKGDATA};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(out, size, "%s/%s", dirs[i], name);
        if (access(out, R_OK) == 0)
            return 0;
    }
    return rm_error("bundled file '%s' not found in $RMINAS_DATA, %s or %s", name,
                    RMINAS_SRCDATA, RMINAS_PKGDATA);
}

/* akamaster's CIFAR ResNets (option A) */
static int akamaster_depth(long d)
{
    return d == 20 || d == 32 || d == 44 || d == 56;
}

/* The CIFAR-100 family of the released code's ResNet-101 teacher */
static int c100_depth(long d)
{
    return d == 18 || d == 34 || d == 50 || d == 101 || d == 152;
}

static int teacher_depth(const char *arch)
{
    if (strncmp(arch, "resnet", 6))
        return -1;
    char *end;
    long d = strtol(arch + 6, &end, 10);
    if (*end || !(akamaster_depth(d) || c100_depth(d)))
        return -1;
    return (int)d;
}

/* The architecture of a network saved by rminas (train save): its "arch"
 * metadata, a string of space sp (a "space" entry, when present, must agree). */
static int file_arch(const st_file *f, const char *path, const space *sp, sarch *a)
{
    const char *arch = NULL, *spn = NULL;
    for (int i = 0; i < f->nmeta; i++) {
        if (!strcmp(f->meta_key[i], "arch"))
            arch = f->meta_val[i];
        if (!strcmp(f->meta_key[i], "space"))
            spn = f->meta_val[i];
    }
    if (spn && strcmp(spn, sp->name))
        return rm_error("%s: a %s network (metadata space), not a %s one", path, spn, sp->name);
    if (!arch)
        return rm_error("%s: no \"arch\" in the metadata; give the architecture: load teacher "
                        "STRING FILE", path);
    return sp->parse(arch, a) < 0 ? rm_error_context("%s: metadata arch", path) : 0;
}

/* A teacher name that is a file name (load teacher FILE, the model left out):
 * no architecture string of any space holds a '/' or ends in .safetensors. */
static int looks_like_path(const char *arch)
{
    size_t n = strlen(arch), k = strlen(".safetensors");
    return strchr(arch, '/') || (n >= k && !strcmp(arch + n - k, ".safetensors"));
}

int session_load_teacher(session *s, const char *arch, const char *file)
{
    int depth = teacher_depth(arch);
    /* a space's network, its architecture from the file (named), or an
     * architecture string of the current space (NB-201 strings in any space) */
    const space *named = depth < 0 ? space_find(arch) : NULL, *sp = named;
    int fresh = file && !strcmp(file, "init"); /* a fresh network for teacher train */
    sarch a;
    if (depth < 0 && !sp) {
        const space *cur = s->sp;
        const int path = looks_like_path(arch);
        if (cur->parse(arch, &a) == 0)
            sp = cur;
        else if (cur != &space_nb201 && arch[0] == '|' && space_nb201.parse(arch, &a) == 0)
            sp = &space_nb201;
        else if ((arch[0] == '|' || cur != &space_nb201) && !path)
            return rm_error_context("teacher '%s'", arch);
        else
            return rm_error("unknown teacher '%s' (known: resnet20, resnet32, resnet44, "
                            "resnet56; the CIFAR-100 family resnet18, resnet34, resnet50, "
                            "resnet101, resnet152; nb201, darts or chain with a FILE saved by "
                            "train save; or an architecture string of the current space)%s",
                            arch, path ? "; a weights file goes after the "
                            "model: load teacher resnet20 FILE" : "");
    }
    char path[1024];
    if (named && (!file || fresh))
        return rm_error("a %s teacher needs its weights: load teacher %s FILE (as written by "
                        "train save)", sp->name, sp->name);
    if (!file && sp)
        return rm_error("a teacher given by its architecture needs its weights, or init for a "
                        "fresh one: load teacher STRING FILE|init");
    if (!file) {
        char name[64];
        snprintf(name, sizeof name, "%s-c10.safetensors", arch);
        if (session_find_data(name, path, sizeof path) < 0)
            return rm_error_context("no bundled weights for %s; give a FILE", arch);
        file = path;
    }
    int nclass = session_nclass(s), hw = session_hw(s);
    model m;
    st_file f;
    memset(&f, 0, sizeof f);
    if (!fresh && st_load(file, &f) < 0)
        return -1;
    int rc;
    if (sp) {
        rc = named ? file_arch(&f, file, sp, &a) : 0;
        if (rc == 0)
            rc = sp->build(&m, s->be, &a, nclass, hw);
    } else {
        rc = akamaster_depth(depth) ? resnet_cifar_build(&m, s->be, depth, nclass, hw)
                                    : resnet_c100_build(&m, s->be, depth, nclass, hw);
    }
    if (rc < 0) {
        if (!fresh)
            st_free(&f);
        return -1;
    }
    if (fresh) {
        rc = graph_init_params(m.g, s->rmi.init_seed);
    } else {
        rc = model_load_state(&m, &f, 1);
        st_free(&f);
    }
    if (rc < 0) {
        model_free(&m);
        return rm_error_context("%s", file);
    }
    model_free(&s->teacher);
    session_drop_batch(s);
    s->teacher = m;
    snprintf(s->teacher_file, sizeof s->teacher_file, "%s", file);
    s->teacher_trained = 0;
    return 0;
}

void session_drop_batch(session *s)
{
    /* the student in training reads the batch */
    rmi_eval_free(&s->eval);
    rmi_data_free(&s->data);
}

int session_teacher_saved(const session *s, const char *what)
{
    if (s->teacher_trained)
        return rm_error("the teacher was trained in this session and not saved: 'teacher save "
                        "FILE' first, so that %s names the weights it was scored with", what);
    return 0;
}

int session_nclass(const session *s) { return s->train.n ? s->train.nclass : 10; }

int session_hw(const session *s) { return s->train.n ? s->train.h : 32; }

/* ---- training the current architecture as a whole network ---- */

static int need_net(session *s)
{
    if (!s->have_arch)
        return rm_error("no architecture (arch set STRING or arch sample)");
    if (!s->train.n)
        return rm_error("no dataset loaded (load dataset cifar10 DIR)");
    if (s->net.g && space_equal(s->arch_sp, &s->net_arch, &s->arch))
        return 0;
    model m;
    if (s->arch_sp->build(&m, s->be, &s->arch, s->train.nclass, s->train.h) < 0)
        return -1;
    if (graph_init_params(m.g, s->rmi.init_seed) < 0) {
        model_free(&m);
        return -1;
    }
    model_free(&s->net);
    s->net = m;
    s->net_arch = s->arch;
    return 0;
}

int session_net_train(session *s, const train_opts *o, train_callback cb, void *user)
{
    if (need_net(s) < 0)
        return -1;
    return model_train(&s->net, &s->train, &s->test, o, cb, user);
}

int session_net_eval(session *s, double *acc)
{
    if (!s->net.g || !s->have_arch || !space_equal(s->arch_sp, &s->net_arch, &s->arch))
        return rm_error("the current architecture has not been trained (train [epochs N ...])");
    if (!s->test.n)
        return rm_error("no dataset loaded (load dataset cifar10 DIR)");
    return model_evaluate(&s->net, &s->test, 200, acc);
}

int session_net_save(session *s, const char *path)
{
    if (!s->net.g)
        return rm_error("no trained network (train [epochs N ...])");
    const char *keys[3] = {"source", "arch", "space"};
    const char *vals[3] = {"rminas train", s->net.name, s->arch_sp->name};
    return model_save_file(&s->net, path, keys, vals, 3);
}

static int need_teacher_and_data(session *s)
{
    if (!s->teacher.g)
        return rm_error("no teacher loaded (load teacher resnet20 [FILE])");
    if (!s->test.n)
        return rm_error("no dataset loaded (load dataset cifar10 DIR)");
    return 0;
}

int session_teacher_eval(session *s, double *acc)
{
    if (need_teacher_and_data(s) < 0)
        return -1;
    return model_evaluate(&s->teacher, &s->test, 200, acc);
}

int session_teacher_train(session *s, const train_opts *o, train_callback cb, void *user)
{
    if (need_teacher_and_data(s) < 0)
        return -1;
    if (s->srch.scored.slot && !s->srch.stop_reason[0] && s->evaluator == EVAL_RMI)
        return rm_error("a search with this teacher as its evaluator is in progress; train the "
                        "teacher before 'search start' (or finish the search first)");
    /* the batch was chosen, and its features computed, by the old weights */
    session_drop_batch(s);
    if (!s->teacher_trained)
        snprintf(s->teacher_base, sizeof s->teacher_base, "%s", s->teacher_file);
    s->teacher_trained++;
    snprintf(s->teacher_file, sizeof s->teacher_file, "%.960s, trained here %d time%s (not saved)",
             s->teacher_base, s->teacher_trained, s->teacher_trained > 1 ? "s" : "");
    return model_train(&s->teacher, &s->train, &s->test, o, cb, user);
}

int session_teacher_save(session *s, const char *path)
{
    if (!s->teacher.g)
        return rm_error("no teacher loaded");
    char src[1100];
    snprintf(src, sizeof src, "rminas from %s", s->teacher_file);
    const char *keys[2] = {"source", "arch"};
    const char *vals[2] = {src, s->teacher.name};
    if (model_save_file(&s->teacher, path, keys, vals, 2) < 0)
        return -1;
    /* a file now holds exactly these weights (not so /dev/null or a pipe) */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(s->teacher_file, sizeof s->teacher_file, "%s", path);
        s->teacher_trained = 0;
    }
    return 0;
}
