/* The command table and the handlers. Handlers print results to stdout and
 * return SH_OK / SH_ERROR (message in rm_error) / SH_EXIT. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shell/shell.h"
#include "tensor/profile.h"
#include "util/clock.h"
#include "util/err.h"

#include "config.h"

int usage_error(const char *cmd, const char *usage)
{
    rm_error("usage: %s %s", cmd, usage);
    return SH_ERROR;
}

/* The same checks and messages as the settings' */
int parse_int(const char *s, long lo, long hi, const char *what, long *out)
{
    return session_parse_long(what, s, lo, hi, out);
}

static int parse_double(const char *s, double lo, double hi, const char *what, double *out)
{
    return session_parse_double(what, s, lo, hi, out);
}

/* ---- help / quit / version / echo ---- */

static int cmd_echo(shell *sh, int argc, char **argv)
{
    (void)sh;
    for (int i = 1; i < argc; i++)
        printf("%s%s", i > 1 ? " " : "", argv[i]);
    printf("\n");
    return SH_OK;
}

static int cmd_help(shell *sh, int argc, char **argv)
{
    (void)sh;
    if (argc > 1) {
        const command *c = shell_find(argv[1]);
        if (!c)
            return SH_ERROR;
        printf("%s %s\n    %s\n", c->name, c->usage, c->help);
        return SH_OK;
    }
    printf("Commands (unique prefixes work; 'help CMD' for one):\n");
    for (int i = 0; i < shell_ncommands; i++)
        printf("  %-8s %s\n", shell_commands[i].name, shell_commands[i].help);
    return SH_OK;
}

static int cmd_quit(shell *sh, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    sh->quit = 1;
    return SH_EXIT;
}

static int cmd_version(shell *sh, int argc, char **argv)
{
    (void)sh;
    (void)argc;
    (void)argv;
    printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
    return SH_OK;
}

/* ---- load ---- */

static const char *const load_subs[] = {"benchmark", "dataset", "teacher", NULL};

static void print_table(const char *what, const bench_table *t, const char *col)
{
    printf("benchmark %s: %d architectures, columns", what, t->nrows);
    for (int i = 0; i < t->ncols; i++)
        printf(" %s", t->colname[i]);
    printf(" (using %s)\n", col);
}

static int cmd_load(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    if (argc >= 2 && !strcmp(argv[1], "dataset")) {
        if (argc != 3 && argc != 4)
            return usage_error("load", "dataset cifar10|cifar100|imagenet16-120 [DIR]");
        if (session_load_dataset(s, argv[2], argc == 4 ? argv[3] : NULL) < 0)
            return SH_ERROR;
        printf("dataset %s: %d training and %d test images, %d classes, from %s\n", argv[2],
               s->train.n, s->test.n, s->train.nclass, s->data_dir);
        return SH_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "teacher")) {
        if (argc != 3 && argc != 4)
            return usage_error("load", "teacher resnet20|32|44|56 [FILE|init] | teacher "
                                       "resnet18|34|50|101|152 FILE|init | teacher "
                                       "nb201|darts|chain FILE | teacher STRING FILE|init");
        if (session_load_teacher(s, argv[2], argc == 4 ? argv[3] : NULL) < 0)
            return SH_ERROR;
        printf("teacher %s: %zu parameters, %.1f M MACs, weights %s\n", s->teacher.name,
               graph_count_trainable(s->teacher.g), graph_count_macs(s->teacher.g) / 1e6,
               s->teacher_file);
        return SH_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "benchmark")) {
        if (argc != 3 && argc != 4)
            return usage_error("load", "benchmark nb201|nb201-12 [FILE]");
        char was[sizeof s->bench_column];
        snprintf(was, sizeof was, "%s", s->bench_column);
        if (session_load_benchmark_kind(s, argv[2], argc == 4 ? argv[3] : NULL) < 0)
            return SH_ERROR;
        if (!strcmp(argv[2], "nb201"))
            print_table("nb201 (ground truth)", &s->bench, s->bench_column);
        else
            print_table("nb201-12 (12-epoch, for the benchmark evaluator)", &s->bench_eval,
                        s->bench_column);
        if (strcmp(was, s->bench_column))
            printf("note: no loaded table has benchmark_column %s; it is now %s\n", was,
                   s->bench_column);
        return SH_OK;
    }
    return usage_error("load", "dataset cifar10|cifar100|imagenet16-120 [DIR] | teacher NAME "
                               "[FILE] | benchmark nb201|nb201-12 [FILE]");
}

/* ---- teacher ---- */

static const char *const teacher_subs[] = {"eval", "train", "save", NULL};

typedef struct progress_state {
    shell *sh;
    long every;
} progress_state;

static int train_progress_cb(const train_progress *p, void *user)
{
    progress_state *ps = user;
    if (p->epoch_end) {
        if (ps->sh->interactive)
            printf("\r\033[K");
        printf("epoch %d/%d: loss %.4f, %.0f images/s, %.1f s", p->epoch, p->epochs,
               p->epoch_loss, p->images_per_s, p->epoch_seconds);
        if (p->test_acc >= 0)
            printf(", test accuracy %.2f %%", 100 * p->test_acc);
        printf("\n");
    } else if (p->step % ps->every == 0 || p->step == p->steps) {
        if (ps->sh->interactive)
            printf("\r\033[Kepoch %d/%d step %ld/%ld loss %.4f lr %.5f %.0f images/s",
                   p->epoch, p->epochs, p->step, p->steps, p->loss, p->lr, p->images_per_s);
        else
            printf("epoch %d/%d step %ld/%ld loss %.4f lr %.5f %.0f images/s\n", p->epoch,
                   p->epochs, p->step, p->steps, p->loss, p->lr, p->images_per_s);
    }
    fflush(stdout);
    return ps->sh->s.interrupt != 0;
}

static const char TRAIN_OPTS[] = "[epochs N] [batch N] [lr X] [wd X] [momentum X] [cosine 0|1] "
                                 "[augment 0|1] [seed N] [every N]";

/* KEY VALUE pairs from argv[first] on into o and *every. */
static int parse_train_opts(int argc, char **argv, int first, train_opts *o, long *every)
{
    for (int i = first; i < argc; i += 2) {
        if (i + 1 >= argc) {
            rm_error("'%s' needs a value (options: %s)", argv[i], TRAIN_OPTS);
            return SH_ERROR;
        }
        const char *k = argv[i], *v = argv[i + 1];
        long l = 0;
        double d = 0;
        int rc;
        if (!strcmp(k, "epochs"))
            rc = parse_int(v, 1, 100000, k, &l), o->epochs = (int)l;
        else if (!strcmp(k, "batch"))
            rc = parse_int(v, 1, 65536, k, &l), o->batch = (int)l;
        else if (!strcmp(k, "seed"))
            rc = parse_int(v, 0, 0x7fffffffL, k, &l), o->seed = (uint64_t)l;
        else if (!strcmp(k, "cosine"))
            rc = parse_int(v, 0, 1, k, &l), o->cosine = (int)l;
        else if (!strcmp(k, "augment"))
            rc = parse_int(v, 0, 1, k, &l), o->augment = (int)l;
        else if (!strcmp(k, "every"))
            rc = parse_int(v, 1, 1000000, k, every);
        else if (!strcmp(k, "lr"))
            rc = parse_double(v, 0, 10, k, &d), o->lr = d;
        else if (!strcmp(k, "wd"))
            rc = parse_double(v, 0, 1, k, &d), o->wd = d;
        else if (!strcmp(k, "momentum"))
            rc = parse_double(v, 0, 1, k, &d), o->momentum = d;
        else
            rc = rm_error("unknown option '%s' (epochs, batch, lr, wd, momentum, cosine, "
                          "augment, seed, every)", k);
        if (rc < 0)
            return SH_ERROR;
    }
    return SH_OK;
}

/* Train the teacher (which = 0) or the current architecture (1). */
static int run_training(shell *sh, int argc, char **argv, int first, int which)
{
    train_opts o;
    train_opts_default(&o);
    o.seed = sh->s.seed;
    long every = 50;
    if (parse_train_opts(argc, argv, first, &o, &every) != SH_OK)
        return SH_ERROR;
    char what[SPACE_STRLEN];
    if (which && sh->s.have_arch)
        sh->s.arch_sp->format(&sh->s.arch, what, sizeof what);
    else
        snprintf(what, sizeof what, "%s", which ? "(no architecture)" : sh->s.teacher.name);
    printf("training %s on %s: %d epochs, batch %d, lr %g%s, momentum %g, wd %g, "
           "augment %s, seed %llu\n",
           what, sh->s.data_name, o.epochs, o.batch, o.lr, o.cosine ? " cosine" : "",
           o.momentum, o.wd, o.augment ? "crop+flip" : "off", (unsigned long long)o.seed);
    progress_state ps = {sh, every};
    int rc = which ? session_net_train(&sh->s, &o, train_progress_cb, &ps)
                   : session_teacher_train(&sh->s, &o, train_progress_cb, &ps);
    if (rc < 0)
        return SH_ERROR;
    if (rc == 1)
        printf("\ntraining interrupted; the network keeps the weights of the last step\n");
    return SH_OK;
}

static int teacher_train(shell *sh, int argc, char **argv)
{
    return run_training(sh, argc, argv, 2, 0);
}

/* ---- train / eval: the current architecture as a whole network ---- */

static const char *const train_subs[] = {"epochs", "batch", "lr", "wd", "momentum", "cosine",
                                         "augment", "seed", "every", "save", NULL};

static int cmd_train(shell *sh, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "save")) {
        if (argc != 3)
            return usage_error("train", "save FILE");
        if (session_net_save(&sh->s, argv[2]) < 0)
            return SH_ERROR;
        printf("wrote %s (load teacher %s %s makes it a teacher)\n", argv[2],
               sh->s.arch_sp->name, argv[2]);
        return SH_OK;
    }
    return run_training(sh, argc, argv, 1, 1);
}

static int cmd_eval(shell *sh, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return usage_error("eval", "");
    double acc;
    if (session_net_eval(&sh->s, &acc) < 0)
        return SH_ERROR;
    printf("%s: test accuracy %.2f %% (%d images of %s, eval-mode BN)\n", sh->s.net.name,
           100 * acc, sh->s.test.n, sh->s.data_name);
    return SH_OK;
}

static int cmd_teacher(shell *sh, int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "eval")) {
        double acc;
        if (session_teacher_eval(&sh->s, &acc) < 0)
            return SH_ERROR;
        printf("teacher %s: test accuracy %.2f %% (%d images of %s, eval-mode BN)\n",
               sh->s.teacher.name, 100 * acc, sh->s.test.n, sh->s.data_name);
        return SH_OK;
    }
    if (argc >= 2 && !strcmp(argv[1], "train"))
        return teacher_train(sh, argc, argv);
    if (argc == 3 && !strcmp(argv[1], "save")) {
        if (session_teacher_save(&sh->s, argv[2]) < 0)
            return SH_ERROR;
        printf("teacher saved to %s\n", argv[2]);
        return SH_OK;
    }
    return usage_error("teacher", "eval | train [options] | save FILE");
}

/* ---- arch ---- */

static const char *const arch_subs[] = {"set", "sample", "show", "dot", "top", NULL};

/* The architecture as a Graphviz digraph (the space draws it). */
static int write_dot(const space *sp, const sarch *a, const char *path)
{
    char buf[8192];
    if (sp->dot(a, buf, sizeof buf) < 0)
        return -1;
    FILE *f = fopen(path, "w");
    if (!f)
        return rm_error("%s: %s", path, strerror(errno));
    fputs(buf, f);
    if (fclose(f) != 0)
        return rm_error("%s: write failed", path);
    return 0;
}

double shell_bench_value(const session *s, const nb201_arch *a, int *col)
{
    if (!s->bench.nrows)
        return NAN;
    *col = bench_column(&s->bench, s->bench_column);
    rm_clear_error();
    return bench_value(&s->bench, bench_row(&s->bench, a), *col);
}

/* benchmark accuracy of an architecture as " (cifar10_test 93.91)" or "" */
void shell_bench_note(const session *s, const nb201_arch *a, char *buf, size_t size)
{
    int col;
    double v = shell_bench_value(s, a, &col);
    buf[0] = '\0';
    if (!isnan(v))
        snprintf(buf, size, " (%s %.2f)", s->bench_column, v);
}

void shell_bench_rank(const session *s, const nb201_arch *a)
{
    int col, n;
    double v = shell_bench_value(s, a, &col), best;
    if (isnan(v))
        return;
    int rank = bench_count_above(&s->bench, col, v, &n, &best) + 1;
    printf("  rank %d of %d by %s (top %.2f %%; the table's best %.2f)\n", rank, n,
           s->bench_column, 100.0 * rank / n, best);
}

static int show_arch(shell *sh, const space *sp, const sarch *sa)
{
    session *s = &sh->s;
    model m;
    if (sp->build(&m, s->be, sa, session_nclass(s), session_hw(s)) < 0)
        return SH_ERROR;
    char str[SPACE_STRLEN];
    sp->format(sa, str, sizeof str);
    printf("arch %s\n", str);
    if (sp != &space_nb201) {
        printf("  %s space; %zu parameters, %.2f M MACs\n", sp->name,
               graph_count_trainable(m.g), graph_count_macs(m.g) / 1e6);
        model_free(&m);
        return SH_OK;
    }
    nb201_arch na = sarch_to_nb201(sa);
    const nb201_arch *a = &na;
    for (int node = 1, e = 0; node <= 3; node++) {
        printf("  node%d =", node);
        for (int in = 0; in < node; in++, e++)
            printf("%s %s(node%d)", in ? " +" : "", nb201_op_names[a->op[e]], in);
        printf("\n");
    }
    printf("  %zu parameters, %.2f M MACs\n", graph_count_trainable(m.g),
           graph_count_macs(m.g) / 1e6);
    model_free(&m);
    if (s->bench.nrows) {
        int row = bench_row(&s->bench, a);
        if (row < 0) {
            printf("  not in the benchmark table\n");
        } else {
            printf(" ");
            for (int c = 0; c < s->bench.ncols; c++) {
                double v = bench_value(&s->bench, row, c);
                printf(v == floor(v) ? " %s %.0f" : " %s %.2f", s->bench.colname[c], v);
            }
            printf("\n");
            shell_bench_rank(s, a);
        }
    }
    return SH_OK;
}

/* arch top [N] [COLUMN]: the benchmark table's best N architectures by
 * COLUMN (default: the benchmark column), with their rank (ties share one)
 * and index (arch INDEX makes one the current architecture). */
static int arch_top(const session *s, int argc, char **argv)
{
    long n = 10;
    const char *name = s->bench_column;
    if (argc > 2)
        return usage_error("arch", "top [N] [COLUMN]");
    for (int i = 0; i < argc; i++) {
        if (!isdigit((unsigned char)argv[i][0]) && !strchr("+-", argv[i][0]))
            name = argv[i];
        else if (parse_int(argv[i], 1, NB201_COUNT, "N", &n) < 0)
            return SH_ERROR;
    }
    if (s->sp != &space_nb201) {
        rm_error("top: the benchmark table is NAS-Bench-201's (space nb201 first)");
        return SH_ERROR;
    }
    if (!s->bench.nrows) {
        rm_error("top needs the benchmark table (load benchmark nb201)");
        return SH_ERROR;
    }
    const bench_table *t = &s->bench;
    const int col = bench_column(t, name);
    if (col < 0)
        return SH_ERROR;
    int *idx = malloc(NB201_COUNT * sizeof *idx);
    const int m = idx ? bench_sorted(t, col, idx) : rm_error("out of memory");
    if (m < 0) {
        free(idx);
        return SH_ERROR;
    }
    const int icol = bench_column(t, "index");
    rm_clear_error();
    printf("the best %ld of %d by %s%s:\n", n < m ? n : m, m, t->colname[col],
           icol >= 0 ? " (rank, index, value; arch INDEX picks one)" : " (rank, value)");
    double prev = NAN;
    for (int i = 0, rank = 1; i < n && i < m; i++) {
        const double v = bench_value(t, t->row_of[idx[i]], col);
        if (i && v != prev)
            rank = i + 1;
        prev = v;
        nb201_arch a;
        char str[SPACE_STRLEN];
        nb201_from_index(idx[i], &a);
        nb201_format(&a, str, sizeof str);
        printf("%6d", rank);
        if (icol >= 0)
            printf("  %6.0f", bench_value(t, t->row_of[idx[i]], icol));
        printf(v == floor(v) ? "  %8.0f  %s\n" : "  %8.2f  %s\n", v, str);
    }
    free(idx);
    return SH_OK;
}

/* An architecture string given as several words (a DARTS genotype typed
 * without quotes) is their join with single spaces. */
static int join_words(int n, char **w, char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        int k = snprintf(buf + o, size - o, "%s%s", i ? " " : "", w[i]);
        if (k < 0 || (size_t)k >= size - o)
            return rm_error("architecture string too long (at most %zu characters)", size - 1);
        o += (size_t)k;
    }
    return 0;
}

/* An architecture of the current space from the words w[0..n). */
static int parse_words(const session *s, int n, char **w, sarch *a)
{
    char str[SPACE_STRLEN];
    return join_words(n, w, str, sizeof str) < 0 ? -1 : session_parse_arch(s, str, a);
}

static int cmd_arch(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    /* arch [set] STRING (a string never begins with a subcommand's name) */
    int sub = 0;
    for (int i = 0; argc >= 2 && arch_subs[i]; i++)
        sub |= !strcmp(argv[1], arch_subs[i]);
    const int set = argc >= 3 && !strcmp(argv[1], "set");
    if (set || (argc >= 2 && !sub)) {
        char str[SPACE_STRLEN];
        rm_clear_error();
        if (join_words(argc - 1 - set, argv + 1 + set, str, sizeof str) < 0 ||
            session_arch_set(s, str) < 0) {
            if (!set && isalpha((unsigned char)argv[1][0]) && !strpbrk(argv[1], "|-(~"))
                rm_error_over("neither a subcommand (set, sample, show, dot, top) nor an "
                              "architecture");
            return SH_ERROR;
        }
        return show_arch(sh, s->arch_sp, &s->arch);
    }
    if (argc >= 2 && !strcmp(argv[1], "top"))
        return arch_top(s, argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "sample")) {
        long n = 1;
        if (argc > 3 || (argc == 3 && parse_int(argv[2], 1, NB201_COUNT, "N", &n) < 0))
            return argc > 3 ? usage_error("arch", "sample [N]") : SH_ERROR;
        sarch *a = malloc((size_t)n * sizeof *a);
        if (!a || session_sample(s, (int)n, a) < 0) {
            free(a);
            return SH_ERROR;
        }
        for (long i = 0; i < n; i++) {
            char str[SPACE_STRLEN], note[96] = "";
            s->sp->format(&a[i], str, sizeof str);
            nb201_arch na = sarch_to_nb201(&a[i]);
            if (s->sp == &space_nb201)
                shell_bench_note(s, &na, note, sizeof note);
            printf("%s%s\n", str, note);
        }
        s->arch = a[n - 1];
        s->arch_sp = s->sp;
        s->have_arch = 1;
        rmi_eval_free(&s->eval);
        free(a);
        return SH_OK;
    }
    if (argc == 1 || (argc == 2 && !strcmp(argv[1], "show"))) {
        if (!s->have_arch) {
            rm_error("no architecture (arch set STRING or arch sample)");
            return SH_ERROR;
        }
        return show_arch(sh, s->arch_sp, &s->arch);
    }
    if (argc >= 3 && !strcmp(argv[1], "show")) {
        sarch a;
        if (parse_words(s, argc - 2, argv + 2, &a) < 0)
            return SH_ERROR;
        return show_arch(sh, s->sp, &a);
    }
    if (argc >= 3 && !strcmp(argv[1], "dot")) {
        const space *sp = s->arch_sp;
        sarch a = s->arch;
        if (argc >= 4) {
            sp = s->sp;
            if (parse_words(s, argc - 3, argv + 3, &a) < 0)
                return SH_ERROR;
        } else if (!s->have_arch) {
            rm_error("no architecture (arch set STRING, or arch dot FILE STRING)");
            return SH_ERROR;
        }
        if (write_dot(sp, &a, argv[2]) < 0)
            return SH_ERROR;
        printf("wrote %s (dot -Tpng %s -o cell.png draws it)\n", argv[2], argv[2]);
        return SH_OK;
    }
    return usage_error("arch", "[set] STRING | sample [N] | [show [STRING]] | dot FILE [STRING] | "
                               "top [N] [COLUMN]");
}

/* ---- RMI: batch, init, step, score, rank ---- */

static const char *const batch_subs[] = {"select", "show", NULL};

static int cmd_batch(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    if (argc == 2 && !strcmp(argv[1], "select")) {
        if (session_select_batch(s) < 0)
            return SH_ERROR;
    } else if (!(argc == 1 || (argc == 2 && !strcmp(argv[1], "show")))) {
        return usage_error("batch", "select | [show]");
    } else if (!s->data.n) {
        rm_error("no batch selected (batch select)");
        return SH_ERROR;
    }
    const rmi_data *d = &s->data;
    printf("batch: %d images chosen from a pool of %d (data_seed %llu, teacher BN %s); "
           "teacher accuracy on the pool %.1f %%, mean CE %.4f\n",
           d->n, d->pool, (unsigned long long)d->settings.data_seed,
           d->settings.teacher_bn ? "train" : "eval", 100 * d->pool_acc, d->pool_ce_mean);
    int count[100] = {0};
    double maxce = 0;
    for (int i = 0; i < d->n; i++) {
        if (d->y[i] >= 0 && d->y[i] < 100)
            count[d->y[i]]++;
        if (d->teacher_ce[i] > maxce)
            maxce = d->teacher_ce[i];
    }
    printf("  classes:");
    for (int c = 0; c < d->nclass && c < 100; c++)
        printf(" %d", count[c]);
    printf("\n  teacher CE of the chosen images: max %.3g\n", maxce);
    printf("  training images:");
    for (int i = 0; i < d->n; i++)
        printf(" %d", d->train_index[i]);
    printf("\n");
    return SH_OK;
}

static int cmd_init(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    if (argc > 2)
        return usage_error("init", "[SEED]");
    if (argc == 2 && session_set(s, "init_seed", argv[1]) < 0)
        return SH_ERROR;
    if (session_student_init(s) < 0)
        return SH_ERROR;
    char str[SPACE_STRLEN];
    s->arch_sp->format(&s->arch, str, sizeof str);
    printf("student %s: %zu parameters, init seed %llu, %d steps planned\n", str,
           graph_count_trainable(s->eval.student.g), (unsigned long long)s->rmi.init_seed,
           s->rmi.steps);
    return SH_OK;
}

static int step_print(const rmi_eval *e, void *user)
{
    (void)user;
    printf("step %4d  loss %.6f  ce %.6f  cka %.6f %.6f %.6f\n", e->step, e->loss, e->ce,
           e->cka[0], e->cka[1], e->cka[2]);
    fflush(stdout);
    return 0;
}

static int cmd_step(shell *sh, int argc, char **argv)
{
    long n = 1;
    if (argc > 2)
        return usage_error("step", "[N]");
    if (argc == 2 && parse_int(argv[1], 1, 1000000, "N", &n) < 0)
        return SH_ERROR;
    int rc = session_student_step(&sh->s, (int)n, step_print, NULL);
    if (rc < 0)
        return SH_ERROR;
    if (sh->s.eval.diverged)
        printf("the loss is not finite: this architecture scores +inf\n");
    if (rc == 1)
        printf("interrupted after step %d\n", sh->s.eval.step);
    return SH_OK;
}

static void print_result(const session *s, const space *sp, const sarch *a, const rmi_result *r)
{
    char str[SPACE_STRLEN], note[96] = "";
    sp->format(a, str, sizeof str);
    nb201_arch na = sarch_to_nb201(a);
    if (sp == &space_nb201)
        shell_bench_note(s, &na, note, sizeof note);
    printf("%s score %.6f  cka %.5f %.5f %.5f  ce %.5f  %d steps %.1f s%s\n", str, r->score,
           r->cka[0], r->cka[1], r->cka[2], r->ce, r->steps, r->seconds, note);
    if (r->diverged)
        printf("  warning: the loss became %s at step %d: score +inf\n",
               isnan(r->loss) ? "NaN" : "infinite", r->steps);
}

static int cmd_score(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    sarch a;
    if (argc >= 2) {
        if (parse_words(s, argc - 1, argv + 1, &a) < 0)
            return SH_ERROR;
    } else if (s->have_arch && s->arch_sp == s->sp) {
        a = s->arch;
    } else {
        rm_error("no architecture (arch set STRING, or score STRING)");
        return SH_ERROR;
    }
    rmi_result r;
    int rc = session_score(s, &a, &r);
    if (rc < 0)
        return SH_ERROR;
    if (rc == 1) {
        printf("interrupted after %d steps\n", r.steps);
        return SH_OK;
    }
    print_result(s, s->sp, &a, &r);
    return SH_OK;
}

static int rank_print(const session *s, int k, int n, void *user)
{
    (void)user;
    const rank_entry *e = &s->rank[k];
    printf("[%d/%d] %s", k + 1, n, e->logged ? "(from the score log) " : "");
    print_result(s, s->rank_sp, &e->arch, &e->r);
    fflush(stdout);
    return 0;
}

/* How the ranking would have come out with fewer steps: tau of the loss
 * at a few steps along the curves of the architectures scored here. */
static void print_tau_by_step(const session *s)
{
    const int steps = s->rank_steps;
    if (steps < 2)
        return;
    const int at[] = {steps / 10, steps / 5, steps / 3, steps / 2, 2 * steps / 3, steps};
    char line[256];
    int len = 0, m = 0, last = 0;
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        double tau;
        if (at[i] <= last || session_rank_tau_at(s, at[i], &tau, &m) < 0 || m < 2)
            continue;
        last = at[i];
        len += snprintf(line + len, sizeof line - (size_t)len, "  %d: %.3f", at[i], tau);
    }
    if (len)
        printf("  by step       kendall tau of -loss at step%s (the %d scored here)\n", line, m);
}

static int cmd_rank(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    if (argc != 2)
        return usage_error("rank", "N | FILE");
    sarch *a = NULL;
    int n;
    char *end;
    long v = strtol(argv[1], &end, 10);
    if (*argv[1] && !*end) {
        if (v < 1 || v > NB201_COUNT) {
            rm_error("N must be from 1 to %d", NB201_COUNT);
            return SH_ERROR;
        }
        n = (int)v;
        a = malloc((size_t)n * sizeof *a);
        if (!a || session_sample(s, n, a) < 0) {
            free(a);
            return SH_ERROR;
        }
    } else if (session_read_archs(s, argv[1], &a, &n) < 0) {
        return SH_ERROR;
    }
    const double t0 = rm_seconds();
    int rc = session_rank(s, a, n, rank_print, NULL);
    const double wall = rm_seconds() - t0;
    free(a);
    if (rc < 0)
        return SH_ERROR;
    if (rc == 1)
        printf("interrupted: %d of %d scored (kept)\n", s->nrank, n);
    double tau[3], rho[3];
    int m;
    if (s->bench.nrows && session_rank_correlations(s, tau, rho, &m) == 0 && m > 1) {
        const char *name[3] = {"RMI (-score)", "#params", "MACs"};
        printf("correlation with %s over %d architectures:\n", s->bench_column, m);
        for (int j = 0; j < 3; j++)
            printf("  %-13s kendall tau %.3f  spearman rho %.3f\n", name[j], tau[j], rho[j]);
        print_tau_by_step(s);
    }
    double total = 0;
    for (int k = 0; k < s->nrank; k++)
        total += s->rank[k].r.seconds;
    if (s->nrank)
        printf("%d architectures in %.1f s (%.2f s each)\n", s->nrank, total, total / s->nrank);
    if (s->nrank)
        printf("wall time %.1f s with %d job%s (%.2f s per architecture)\n", wall, s->jobs,
               s->jobs > 1 ? "s" : "", wall / s->nrank);
    return SH_OK;
}

/* ---- profile ---- */

static const char *const profile_subs[] = {"on", "off", "reset", "show", NULL};
#define PROFILE_USAGE "[on | off | reset | show]"

/* "32x16x32x32 -> 16 3x3 s1 p1" (and d, g, relu_in when not plain) */
static void conv_shape(const conv_desc *d, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%dx%dx%dx%d -> %d %dx%d s%d p%d", d->n, d->cin, d->h, d->w,
                     d->cout, d->kh, d->kw, d->stride, d->pad);
    if (d->dil != 1 && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " d%d", d->dil);
    if (d->groups != 1 && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, " g%d", d->groups);
    if (d->relu_in && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, " relu_in");
}

static void print_profile(const session *s)
{
    prof_op ops[64];
    const int nops = backend_profile_ops(ops, 64);
    double total = 0;
    for (int i = 0; i < nops; i++)
        total += ops[i].seconds;
    char dev[48];
    if (!strcmp(s->be->name, "cpu"))
        snprintf(dev, sizeof dev, "cpu, %d thread%s", s->threads, s->threads == 1 ? "" : "s");
    else
        snprintf(dev, sizeof dev, "%s%s%s", s->be->name, s->be->math ? ", math " : "",
                 s->be->math ? s->be->math : "");
    printf("profile (%s, %s%s): %.3f s in backend operations of %.3f s profiled\n",
           backend_profile_enabled() ? "on" : "off", dev,
           s->jobs > 1 ? "; several jobs: thread-seconds" : "", total, backend_profile_wall());
    if (!nops) {
        printf("  nothing counted yet: 'profile on', then score, rank, step or search\n");
        return;
    }
    printf("  %-20s %10s %11s %7s %11s\n", "operation", "calls", "seconds", "share",
           "us per call");
    for (int i = 0; i < nops; i++)
        printf("  %-20s %10lld %11.4f %6.1f%% %11.1f\n", ops[i].name, ops[i].calls,
               ops[i].seconds, total > 0 ? 100 * ops[i].seconds / total : 0,
               1e6 * ops[i].seconds / (double)ops[i].calls);
    prof_conv cv[12];
    int more = 0;
    const int nc = backend_profile_convs(cv, 12, &more);
    if (nc <= 0)
        return;
    printf("  convolutions by shape (n x cin x h x w -> cout kernel stride pad), most time "
           "first:\n");
    printf("  %-38s %8s %10s %8s %10s %7s\n", "shape", "forward", "seconds", "backward",
           "seconds", "share");
    for (int i = 0; i < nc; i++) {
        char sh[96];
        conv_shape(&cv[i].d, sh, sizeof sh);
        printf("  %-38s %8lld %10.4f %8lld %10.4f %6.1f%%\n", sh, cv[i].calls[0],
               cv[i].seconds[0], cv[i].calls[1], cv[i].seconds[1],
               total > 0 ? 100 * (cv[i].seconds[0] + cv[i].seconds[1]) / total : 0);
    }
    if (more)
        printf("  (%d more shapes)\n", more);
}

static int cmd_profile(shell *sh, int argc, char **argv)
{
    session *s = &sh->s;
    if (argc > 2)
        return usage_error("profile", PROFILE_USAGE);
    const char *sub = argc == 2 ? argv[1] : "show";
    if (!strcmp(sub, "on") || !strcmp(sub, "off")) {
        const int on = !strcmp(sub, "on");
        if (session_set_profile(s, on) < 0)
            return SH_ERROR;
        printf("profile %s%s\n", sub,
               on ? ": every backend operation of what is built from now on is timed (on a GPU "
                    "one at a time, without CUDA graphs); 'profile' shows them"
                  : "");
        return SH_OK;
    }
    if (!strcmp(sub, "reset")) {
        backend_profile_reset();
        printf("profile reset\n");
        return SH_OK;
    }
    if (strcmp(sub, "show"))
        return usage_error("profile", PROFILE_USAGE);
    print_profile(s);
    return SH_OK;
}

/* ---- export ---- */

static const char *const export_subs[] = {"csv", NULL};

static int cmd_export(shell *sh, int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[1], "csv"))
        return usage_error("export", "csv steps|rank|curves|search|profile FILE");
    if (session_export_csv(&sh->s, argv[2], argv[3]) < 0)
        return SH_ERROR;
    printf("wrote %s\n", argv[3]);
    return SH_OK;
}

/* ---- panel ---- */

static int cmd_panel(shell *sh, int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        return usage_error("panel", "");
    return panel_run(sh) < 0 ? SH_ERROR : SH_OK;
}

/* ---- space ---- */

static int cmd_space(shell *sh, int argc, char **argv)
{
    if (argc > 2)
        return usage_error("space", "[nb201|darts|chain]");
    const char *const *before = sh->s.sp->settings;
    if (argc == 2 && session_set_space(&sh->s, argv[1]) < 0)
        return SH_ERROR;
    printf("space %s: %s\n", sh->s.sp->name, sh->s.sp->help);
    if (sh->s.sp->settings != before) {
        printf("  its search settings:");
        for (const char *const *kv = sh->s.sp->settings; kv[0]; kv += 2)
            printf(" %s %s%s", kv[0], kv[1], kv[2] ? "," : "\n");
    }
    if (sh->s.sp != &space_nb201)
        printf("  (no benchmark table: no accuracies, correlations or benchmark evaluator "
               "here)\n");
    return SH_OK;
}

/* ---- set / show ---- */

static int cmd_set(shell *sh, int argc, char **argv)
{
    if (argc != 3)
        return usage_error("set", "KEY VALUE ('show settings' lists the keys)");
    if (session_set(&sh->s, argv[1], argv[2]) < 0)
        return SH_ERROR;
    /* a thread count past OpenMP's (the cores, or OMP_NUM_THREADS) is taken
     * as all of them: say so */
    long asked = strtol(argv[2], NULL, 10);
    if (!strcmp(argv[1], "threads") && asked > sh->s.threads)
        printf("threads %d: the most here (the cores, or OMP_NUM_THREADS)\n", sh->s.threads);
    return SH_OK;
}

static const char *const show_subs[] = {"settings", NULL};

static int cmd_show(shell *sh, int argc, char **argv)
{
    if (argc > 2)
        return usage_error("show", "[settings | KEY]");
    session *s = &sh->s;
    /* show KEY: that setting's line alone */
    const char *only = argc == 2 && strcmp(argv[1], "settings") ? argv[1] : NULL;
    if (only && !strcmp(only, "rank_log"))
        only = "score_log"; /* its older name, as set takes it */
    int shown = 0;
    for (int i = 0; i < session_nsettings; i++) {
        if (only && strcmp(only, session_settings[i].key))
            continue;
        char v[128];
        session_get(s, session_settings[i].key, v, sizeof v);
        printf("%-17s %-14s %s\n", session_settings[i].key, v, session_settings[i].help);
        shown++;
    }
    if (only) {
        if (shown)
            return SH_OK;
        rm_error("unknown setting '%s' ('show settings' lists them)", only);
        return SH_ERROR;
    }
    printf("loaded: dataset %s, teacher %s, benchmark %s%s%s, batch %s, arch %s\n",
           s->train.n ? s->data_dir : "(none)", s->teacher.g ? s->teacher_file : "(none)",
           s->bench.nrows ? s->bench.path : "(none)", s->bench_eval.nrows ? ", 12-epoch " : "",
           s->bench_eval.nrows ? s->bench_eval.path : "", s->data.n ? "selected" : "(none)",
           s->have_arch ? "set" : "(none)");
    return SH_OK;
}

const command shell_commands[] = {
    {"arch", "[set] STRING | sample [N] | [show [STRING]] | dot FILE [STRING] | top [N] [COLUMN]",
     "set, sample or show an architecture of the current space (#params, MACs; NB-201: the cell, "
     "its benchmark accuracies and rank in the table), or draw its cell or chain (Graphviz); "
     "'arch' alone shows the current one; in NB-201 a number is the benchmark's index, and "
     "'arch top' lists the table's best N (default 10) by a column (default benchmark_column)",
     cmd_arch, arch_subs},
    {"batch", "select | [show]",
     "select the RMI batch (the teacher's most confident images of a random pool), or show it",
     cmd_batch,
     batch_subs},
    {"echo", "[TEXT ...]", "print the text (for scripts)", cmd_echo, NULL},
    {"eval", "", "test accuracy of the current architecture trained with 'train'", cmd_eval,
     NULL},
    {"exit", "", "leave rminas (same as quit)", cmd_quit, NULL},
    {"export", "csv steps|rank|curves|search|profile FILE",
     "write the student's per-step values, the ranking, its architectures' per-step values "
     "(learning curves), the search log or the profile as CSV",
     cmd_export, export_subs},
    {"help", "[COMMAND]", "list the commands, or describe one", cmd_help, NULL},
    {"init", "[SEED]", "a fresh student of the current architecture", cmd_init, NULL},
    {"load", "dataset cifar10|cifar100|imagenet16-120 [DIR] "
             "| teacher resnet20|32|44|56 [FILE|init] | teacher resnet18|34|50|101|152 FILE|init "
             "| teacher nb201|darts|chain FILE | teacher STRING FILE|init "
             "| benchmark nb201|nb201-12 [FILE]",
     "load a dataset, a teacher (safetensors), the benchmark table (nb201) or the 12-epoch table "
     "for the benchmark evaluator (nb201-12)",
     cmd_load, load_subs},
    {"panel", "",
     "full-screen view: CKA bars and history, loss curve, search progress; keys s/S step, i init, "
     "r run the search, p pause, j the next job in full (jobs > 1), q back",
     cmd_panel, NULL},
    {"profile", PROFILE_USAGE,
     "time every backend operation (on: from now on; show, the default: calls and seconds by "
     "operation and by convolution shape; reset; off)",
     cmd_profile, profile_subs},
    {"quit", "", "leave rminas", cmd_quit, NULL},
    {"rank", "N | FILE",
     "score N sampled architectures (or those listed in FILE) and correlate with the benchmark, "
     "also at earlier steps; 'set jobs J' scores J at once",
     cmd_rank, NULL},
    {"score", "[STRING]", "the RMI score of an architecture (default: the current one)",
     cmd_score, NULL},
    {"search", "start rminas|random|rea|reinforce [KEY VALUE ...] | warmup | step [N] | run | "
               "pause | resume [FILE] | load FILE | status | result",
     "search the current space: RMI-NAS, random search, REA or REINFORCE (Ctrl-C pauses; the "
     "state is saved after every evaluation when 'set state FILE')",
     cmd_search, search_subs},
    {"set", "KEY VALUE", "change a setting ('show settings' lists them)", cmd_set, NULL},
    {"show", "[settings | KEY]", "show the settings and what is loaded, or one setting",
     cmd_show, show_subs},
    {"space", "[nb201|darts|chain]",
     "choose the space of architectures for arch, score, rank and search (NAS-Bench-201, the "
     "DARTS cell, or the MobileNet-like chain), show its architecture strings; choosing darts "
     "applies the paper's DARTS search settings, choosing nb201 or chain after it the NB-201 ones",
     cmd_space, NULL},
    {"step", "[N]", "train the student N steps with the RMI loss, printing loss, CE and CKA",
     cmd_step, NULL},
    {"teacher", "eval | train [epochs N] [batch N] [lr X] [wd X] [momentum X] [cosine 0|1] "
                "[augment 0|1] [seed N] [every N] | save FILE",
     "evaluate the teacher on the test split, fine-tune it (a new batch follows; score logs and "
     "search states wait for teacher save), or save its weights", cmd_teacher,
     teacher_subs},
    {"train", "[epochs N] [batch N] [lr X] [wd X] [momentum X] [cosine 0|1] [augment 0|1] "
              "[seed N] [every N] | save FILE",
     "train the current architecture as a whole network (from init_seed), or save it", cmd_train,
     train_subs},
    {"version", "", "print the version", cmd_version, NULL},
};
const int shell_ncommands = sizeof shell_commands / sizeof shell_commands[0];
