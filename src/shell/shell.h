/* The rminas command shell: one command table drives dispatch, help and
 * completion; interactive and batch modes share shell_exec_line. */
#ifndef RM_SHELL_H
#define RM_SHELL_H

#include <stdio.h>

#include "session/session.h"

typedef struct shell {
    session s;
    int interactive;    /* a terminal: progress lines are rewritten in place */
    int quit;
} shell;

enum { SH_OK = 0, SH_ERROR = 1, SH_EXIT = 2 };

typedef struct command {
    const char *name;
    const char *usage;    /* arguments, e.g. "dataset cifar10|cifar100 DIR" */
    const char *help;     /* one line */
    int (*run)(shell *sh, int argc, char **argv);   /* argv[0] is the command */
    const char *const *subs;   /* first-argument words for completion, or NULL */
} command;

extern const command shell_commands[];
extern const int shell_ncommands;

/* Run one line (comments start with #). Returns SH_OK, SH_ERROR (the
 * message already printed to stderr) or SH_EXIT. */
int shell_exec_line(shell *sh, const char *line);
/* The command named by name or a unique prefix of it; NULL with rm_error
 * (unknown or ambiguous). */
const command *shell_find(const char *name);
/* Helpers shared by the command files. usage_error returns SH_ERROR with
 * "usage: CMD USAGE"; parse_int returns -1 with rm_error when s is not an
 * integer in [lo, hi]; shell_bench_note writes " (COLUMN VALUE)" or "";
 * shell_bench_rank prints the architecture's rank by benchmark_column in
 * the ground truth, when both are there; shell_bench_value is its value in
 * benchmark_column (col: the column), NaN when there is none. */
int usage_error(const char *cmd, const char *usage);
int parse_int(const char *s, long lo, long hi, const char *what, long *out);
void shell_bench_note(const session *s, const nb201_arch *a, char *buf, size_t size);
void shell_bench_rank(const session *s, const nb201_arch *a);
double shell_bench_value(const session *s, const nb201_arch *a, int *col);
int cmd_search(shell *sh, int argc, char **argv);
/* An architecture of the current search as text (size SPACE_STRLEN) and its
 * benchmark note (size 96). */
void shell_search_arch(const session *s, const sarch *a, char *str, char *note);
/* The ncurses panel (panel.c); returns 0 or -1 with rm_error. */
int panel_run(shell *sh);
extern const char *const search_subs[];

/* Split a line into words (quotes '...' and "..." group). Returns argc or
 * -1 on an unterminated quote; argv strings live in buf. */
int shell_split(const char *line, char *buf, size_t bufsize, char **argv, int maxargs);

#endif
