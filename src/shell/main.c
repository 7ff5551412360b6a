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
#include "shell/shell.h"
#include "util/err.h"

static shell *g_shell; /* for the SIGINT handler only */

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
            "      --seed N        initial seed setting\n"
            "      --threads N     CPU threads (0 = all cores)\n"
            "      --device NAME   cpu or cuda\n"
            "  -V, --version       print the version\n"
            "  -h, --help          this help\n"
            "Without -c or -f, commands are read from the terminal (line editing,\n"
            "history, completion) or from standard input. The exit status is 1 if\n"
            "any command failed.\n");
}

/* Runs every line of f; returns the number of failed commands, or -1 to
 * stop (exit or bail). */
static int run_stream(shell *sh, FILE *f, const char *name, int bail, int *failed)
{
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
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

/* Tab completion: command names first, then the command's sub-words. */
static int compl_index;
static const command *compl_cmd;

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

static char *sub_generator(const char *text, int state)
{
    if (!state)
        compl_index = 0;
    size_t len = strlen(text);
    if (!compl_cmd || !compl_cmd->subs)
        return NULL;
    while (compl_cmd->subs[compl_index]) {
        const char *w = compl_cmd->subs[compl_index++];
        if (!strncmp(w, text, len))
            return strdup(w);
    }
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    int i = 0;
    while (i < start && rl_line_buffer[i] == ' ')
        i++;
    if (i == start) {
        rl_attempted_completion_over = 1;
        return rl_completion_matches(text, command_generator);
    }
    char first[64];
    int k = 0;
    while (i < start && rl_line_buffer[i] != ' ' && k < 63)
        first[k++] = rl_line_buffer[i++];
    first[k] = '\0';
    int words = 0;
    for (int j = i; j < start; j++)
        if (rl_line_buffer[j] != ' ' && (j == 0 || rl_line_buffer[j - 1] == ' '))
            words++;
    compl_cmd = shell_find(first);
    rm_clear_error();
    if (compl_cmd && compl_cmd->subs && words == 0) {
        rl_attempted_completion_over = 1;
        return rl_completion_matches(text, sub_generator);
    }
    return NULL; /* file names */
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
    while ((line = readline("rminas> ")) != NULL) {
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
        {"bail", no_argument, 0, 'b'},          {"seed", required_argument, 0, 1},
        {"threads", required_argument, 0, 2},   {"device", required_argument, 0, 3},
        {"version", no_argument, 0, 'V'},       {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    /* actions in order: 'c' command or 'f' file */
    char **act = calloc((size_t)argc + 1, sizeof *act);
    char *kind = calloc((size_t)argc + 1, 1);
    int nact = 0, bail = 0, opt;
    const char *seed = NULL, *threads = NULL, *device = NULL;
    while ((opt = getopt_long(argc, argv, "c:f:bVh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
        case 'f':
            kind[nact] = (char)opt;
            act[nact++] = optarg;
            break;
        case 'b':
            bail = 1;
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
    if (failed && bail)
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
out:
    session_free(&sh.s);
    free(act);
    free(kind);
    return failed ? 1 : 0;
}
