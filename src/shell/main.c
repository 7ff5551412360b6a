/* rminas: the command-line entry point. Commands come from -c arguments,
 * -f script files, or the terminal (GNU Readline) / standard input. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "config.h"
#include "models/model.h"
#include "shell/shell.h"
#include "util/err.h"

static shell *g_shell; /* for the SIGINT handler and completion */

static void on_sigint(int sig)
{
    (void)sig;
    if (g_shell)
        g_shell->s.interrupt = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rminas [options] [-c COMMAND]... [-f FILE]...\n"
            "  -c, --command CMD   run CMD (repeatable, in order)\n"
            "  -f, --file FILE     run the commands in FILE ('-' = standard input)\n"
            "  -b, --bail          stop at the first failing command\n"
            "  -e, --echo          print each command (as after a prompt) before running it\n"
            "      --seed N        initial seed setting\n"
            "      --threads N     CPU threads (0 = all cores)\n"
            "      --device NAME   cpu or cuda\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this help\n"
            "Without -c or -f, commands are read from the terminal (line editing,\n"
            "history, completion) or from standard input. The exit status is 1 if\n"
            "any command failed, 2 for a bad option or option value (nothing run).\n");
}

/* Runs every line of f; returns the number of failed commands, or -1 to
 * stop (exit or bail). */
static int g_echo;

/* With --echo: "rminas> LINE" for a line that is a command (not blank, not a comment). */
static void echo_line(const char *line)
{
    const char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!g_echo || !*p || *p == '\n' || *p == '#')
        return;
    size_t n = strcspn(p, "\r\n");
    printf("rminas> %.*s\n", (int)n, p);
    fflush(stdout);
}

static int run_stream(shell *sh, FILE *f, const char *name, int bail, int *failed)
{
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        echo_line(line);
        int r = shell_exec_line(sh, line);
        if (r == SH_ERROR) {
            (*failed)++;
            if (name)
                fprintf(stderr, "  (at %s line %ld)\n", name, lineno);
            if (bail) {
                rc = -1;
                break;
            }
        } else if (r == SH_EXIT) {
            rc = -1;
            break;
        }
    }
    free(line);
    return rc;
}

static char *history_path(void)
{
    const char *base = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char dir[1024];
    if (base && *base)
        snprintf(dir, sizeof dir, "%s/rminas", base);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.local/state/rminas", home);
    else
        return NULL;
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0700);
            *p = '/';
        }
    mkdir(tmp, 0700);
    size_t n = strlen(dir) + 16;
    char *path = malloc(n);
    if (path)
        snprintf(path, n, "%s/history", dir);
    return path;
}

/* Tab completion: command names, sub-commands, setting names and values,
 * algorithm / dataset / teacher / benchmark names, operation names inside
 * architecture strings (after '|'), file names elsewhere. */
static int compl_index;
static const char *const *compl_words;
static const char *compl_settings[64];

static char *command_generator(const char *text, int state)
{
    if (!state)
        compl_index = 0;
    size_t len = strlen(text);
    while (compl_index < shell_ncommands) {
        const char *name = shell_commands[compl_index++].name;
        if (!strncmp(name, text, len))
            return strdup(name);
    }
    return NULL;
}

static size_t compl_keep; /* leading characters of the text kept as they are */

static char *word_generator(const char *text, int state)
{
    if (!state)
        compl_index = 0;
    size_t len = strlen(text + compl_keep);
    if (!compl_words)
        return NULL;
    while (compl_words[compl_index]) {
        const char *w = compl_words[compl_index++];
        if (!strncmp(w, text + compl_keep, len)) {
            char *m = malloc(compl_keep + strlen(w) + 1);
            if (m)
                sprintf(m, "%.*s%s", (int)compl_keep, text, w);
            return m;
        }
    }
    return NULL;
}

static const char *const op_words[] = {"none~", "skip_connect~", "nor_conv_1x1~", "nor_conv_3x3~",
                                       "avg_pool_3x3~", NULL};
static const char *const algo_words[] = {"rminas", "random", "rea", "reinforce", NULL};
static const char *const dataset_words[] = {"cifar10", "cifar100", "imagenet16-120", NULL};
static const char *const teacher_words[] = {"resnet20",  "resnet32",  "resnet44",  "resnet56",
                                            "resnet18",  "resnet34",  "resnet50",  "resnet101",
                                            "resnet152", "nb201",     "darts",     "chain",
                                            NULL};
static const char *const bench_words[] = {"nb201", "nb201-12", NULL};
static const char *const csv_words[] = {"steps", "rank", "curves", "search", "profile", NULL};
static const char *const evaluator_words[] = {"rmi", "benchmark", NULL};
static const char *const bn_words[] = {"train", "eval", NULL};
static const char *const conv_words[] = {"dnnl",      "winograd", "winograd2",
                                          "winograd4", "im2col",   NULL};
static const char *const space_words[] = {"nb201", "darts", "chain", NULL};

/* The loaded benchmark table's columns (arch top, set benchmark_column). */
static const char *const *bench_columns(void)
{
    static const char *cols[64];
    const bench_table *t = g_shell ? &g_shell->s.bench : NULL;
    int n = 0;
    for (; t && n < t->ncols && n < 63; n++)
        cols[n] = t->colname[n];
    cols[n] = NULL;
    return cols;
}

/* The words that may follow `w0 w1 ...` (nwords typed so far), or NULL. */
static const char *const *next_words(char words[][64], int nwords)
{
    const command *c = shell_find(words[0]);
    rm_clear_error();
    if (!c)
        return NULL;
    if (nwords == 1) {
        if (!strcmp(c->name, "set")) {
            for (int i = 0; i < session_nsettings && i < 63; i++)
                compl_settings[i] = session_settings[i].key;
            compl_settings[session_nsettings < 63 ? session_nsettings : 63] = NULL;
            return compl_settings;
        }
        if (!strcmp(c->name, "space"))
            return space_words;
        return c->subs;
    }
    if (nwords == 2) {
        const char *w = words[1];
        if (!strcmp(c->name, "load"))
            return !strcmp(w, "dataset") ? dataset_words : !strcmp(w, "teacher") ? teacher_words
                   : !strcmp(w, "benchmark") ? bench_words : NULL;
        if (!strcmp(c->name, "search") && !strcmp(w, "start"))
            return algo_words;
        if (!strcmp(c->name, "export") && !strcmp(w, "csv"))
            return csv_words;
        if (!strcmp(c->name, "arch") && !strcmp(w, "top"))
            return bench_columns();
        if (!strcmp(c->name, "set"))
            return !strcmp(w, "evaluator")    ? evaluator_words
                   : !strcmp(w, "teacher_bn") ? bn_words
                   : !strcmp(w, "conv")       ? conv_words
                   : !strcmp(w, "benchmark_column") ? bench_columns()
                                              : NULL;
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    compl_keep = 0;
    const int chain = g_shell && g_shell->s.sp == &space_chain;
    const char *dash = chain ? strrchr(text, '-') : NULL;
    if ((start > 0 && (rl_line_buffer[start - 1] == '|' || rl_line_buffer[start - 1] == '+')) ||
        dash) {
        /* inside an architecture string ('|' ends readline's words; a chain's
         * '-' does not, so the text up to it stays): operation names */
        static const char *chain_words[CHAIN_NOPS + 1];
        for (int i = 0; i < CHAIN_NOPS; i++)
            chain_words[i] = chain_op_names[i];
        compl_words = chain ? chain_words : op_words;
        compl_keep = dash ? (size_t)(dash + 1 - text) : 0;
        rl_attempted_completion_over = 1;
        rl_completion_append_character = '\0';
        return rl_completion_matches(text, word_generator);
    }
    char words[8][64];
    int nwords = 0, i = 0;
    while (i < start && nwords < 8) {
        while (i < start && rl_line_buffer[i] == ' ')
            i++;
        if (i >= start)
            break;
        int k = 0;
        while (i < start && rl_line_buffer[i] != ' ' && k < 63)
            words[nwords][k++] = rl_line_buffer[i++];
        words[nwords][k] = '\0';
        nwords++;
    }
    if (nwords == 0) {
        rl_attempted_completion_over = 1;
        return rl_completion_matches(text, command_generator);
    }
    compl_words = next_words(words, nwords);
    if (compl_words) {
        rl_attempted_completion_over = 1;
        return rl_completion_matches(text, word_generator);
    }
    return NULL; /* file names */
}

/* "rminas> ", or with what is loaded: "rminas[cifar10 resnet20 3|-3|s-s]> "
 * (the architecture in one letter per edge: - none, s skip, 1 conv 1x1,
 * 3 conv 3x3, p avg pool; '|' between nodes). */
static void make_prompt(const session *s, char *buf, size_t size)
{
    char parts[128] = "";
    size_t o = 0;
    if (s->train.n)
        o += (size_t)snprintf(parts + o, sizeof parts - o, " %s", s->data_name);
    if (s->teacher.g && o < sizeof parts) /* an architecture string: its first 20 characters */
        o += (size_t)snprintf(parts + o, sizeof parts - o, " %.20s%s", s->teacher.name,
                              strlen(s->teacher.name) > 24 ? "..." : "");
    if (s->have_arch && s->arch_sp == &space_nb201 && o + 12 < sizeof parts) {
        static const char code[NB201_NOPS] = {'-', 's', '1', '3', 'p'};
        const uint8_t *op = s->arch.v;
        o += (size_t)snprintf(parts + o, sizeof parts - o, " %c|%c%c|%c%c%c", code[op[0]],
                              code[op[1]], code[op[2]], code[op[3]], code[op[4]], code[op[5]]);
    }
    if (s->srch.scored.slot && o < sizeof parts)
        o += (size_t)snprintf(parts + o, sizeof parts - o, " %s:%d", search_algo_names[s->srch.o.algo],
                              s->srch.n);
    if (o)
        snprintf(buf, size, "rminas[%s]> ", parts + 1);
    else
        snprintf(buf, size, "rminas> ");
}

static int run_interactive(shell *sh, int *failed)
{
    char *hist = history_path();
    rl_readline_name = "rminas";
    rl_attempted_completion_function = complete;
    using_history();
    stifle_history(2000);
    if (hist)
        read_history(hist);
    printf("rminas %s: neural architecture search with representation mutual information.\n"
           "Type 'help' for the commands, 'quit' to leave.\n",
           PACKAGE_VERSION);
    char *line;
    char prompt[192];
    for (;;) {
        make_prompt(&sh->s, prompt, sizeof prompt);
        if (!(line = readline(prompt)))
            break;
        if (*line)
            add_history(line);
        int r = shell_exec_line(sh, line);
        free(line);
        if (r == SH_ERROR)
            (*failed)++;
        else if (r == SH_EXIT)
            break;
    }
    if (hist) {
        write_history(hist);
        free(hist);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"command", required_argument, 0, 'c'}, {"file", required_argument, 0, 'f'},
        {"bail", no_argument, 0, 'b'},          {"echo", no_argument, 0, 'e'},          {"seed", required_argument, 0, 1},
        {"threads", required_argument, 0, 2},   {"device", required_argument, 0, 3},
        {"version", no_argument, 0, 'V'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    /* actions in order: 'c' command or 'f' file */
    char **act = calloc((size_t)argc + 1, sizeof *act);
    char *kind = calloc((size_t)argc + 1, 1);
    if (!act || !kind) {
        fprintf(stderr, "rminas: out of memory\n");
        return 2;
    }
    int nact = 0, bail = 0, opt;
    const char *seed = NULL, *threads = NULL, *device = NULL;
    while ((opt = getopt_long(argc, argv, "c:f:beVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 'f':
            kind[nact] = (char)opt;
            act[nact++] = optarg;
            break;
        case 'b':
            bail = 1;
            break;
        case 'e':
            g_echo = 1;
            break;
        case 1:
            seed = optarg;
            break;
        case 2:
            threads = optarg;
            break;
        case 3:
            device = optarg;
            break;
        case 'V':
            printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rminas: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    shell sh;
    memset(&sh, 0, sizeof sh);
    session_init(&sh.s);
    g_shell = &sh;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);

    int failed = 0;
    char line[1100];
    if (threads) {
        snprintf(line, sizeof line, "set threads %s", threads);
        failed += shell_exec_line(&sh, line) == SH_ERROR;
    }
    if (seed) {
        snprintf(line, sizeof line, "set seed %s", seed);
        failed += shell_exec_line(&sh, line) == SH_ERROR;
    }
    if (device) {
        snprintf(line, sizeof line, "set device %s", device);
        failed += shell_exec_line(&sh, line) == SH_ERROR;
    }
    int status = 2; /* a bad option value: the usage error, nothing run */
    if (failed)
        goto out;

    if (nact == 0) {
        if (isatty(STDIN_FILENO)) {
            sh.interactive = isatty(STDOUT_FILENO);
            run_interactive(&sh, &failed);
        } else {
            run_stream(&sh, stdin, NULL, bail, &failed);
        }
    } else {
        for (int i = 0; i < nact; i++) {
            if (kind[i] == 'c') {
                echo_line(act[i]);
                int r = shell_exec_line(&sh, act[i]);
                if (r == SH_ERROR) {
                    failed++;
                    if (bail)
                        break;
                } else if (r == SH_EXIT) {
                    break;
                }
            } else {
                FILE *f = strcmp(act[i], "-") ? fopen(act[i], "r") : stdin;
                struct stat st;
                if (f && f != stdin && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
                    fclose(f);
                    f = NULL;
                    errno = EISDIR;
                }
                if (!f) {
                    fprintf(stderr, "rminas: cannot open %s: %s\n", act[i], strerror(errno));
                    failed++;
                    if (bail)
                        break;
                    continue;
                }
                int r = run_stream(&sh, f, act[i], bail, &failed);
                if (f != stdin)
                    fclose(f);
                if (r < 0)
                    break;
            }
        }
    }
    status = failed ? 1 : 0;
out:
    session_free(&sh.s);
    free(act);
    free(kind);
    return status;
}
