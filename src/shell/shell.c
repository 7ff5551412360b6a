#include "shell/shell.h"

#include <ctype.h>
#include <string.h>

#include "util/err.h"

int shell_split(const char *line, char *buf, size_t bufsize, char **argv, int maxargs)
{
    int argc = 0;
    size_t o = 0;
    const char *p = line;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            break;
        if (argc == maxargs)
            return rm_error("too many words (at most %d)", maxargs);
        argv[argc++] = buf + o;
        while (*p && !isspace((unsigned char)*p)) {
            if (*p == '\'' || *p == '"') {
                char q = *p++;
                while (*p && *p != q) {
                    if (o + 1 >= bufsize)
                        return rm_error("line too long");
                    buf[o++] = *p++;
                }
                if (*p != q)
                    return rm_error("unterminated %c quote", q);
                p++;
            } else {
                if (o + 1 >= bufsize)
                    return rm_error("line too long");
                buf[o++] = *p++;
            }
        }
        buf[o++] = '\0';
    }
    return argc;
}

const command *shell_find(const char *name)
{
    const command *hit = NULL;
    int nhits = 0;
    size_t len = strlen(name);
    for (int i = 0; i < shell_ncommands; i++) {
        if (!strcmp(shell_commands[i].name, name))
            return &shell_commands[i];
        if (!strncmp(shell_commands[i].name, name, len)) {
            hit = &shell_commands[i];
            nhits++;
        }
    }
    if (nhits == 1)
        return hit;
    if (nhits == 0) {
        rm_error("unknown command '%s' (type 'help' for the list)", name);
        return NULL;
    }
    char list[512];
    size_t o = 0;
    for (int i = 0; i < shell_ncommands && o < sizeof list; i++)
        if (!strncmp(shell_commands[i].name, name, len))
            o += (size_t)snprintf(list + o, sizeof list - o, " %s", shell_commands[i].name);
    rm_error("ambiguous command '%s': could be%s", name, list);
    return NULL;
}

int shell_exec_line(shell *sh, const char *line)
{
    char buf[8192];
    char *argv[64];
    int argc = shell_split(line, buf, sizeof buf, argv, 64);
    if (argc < 0) {
        fprintf(stderr, "error: %s\n", rm_last_error());
        return SH_ERROR;
    }
    if (argc == 0)
        return SH_OK;
    const command *c = shell_find(argv[0]);
    if (!c) {
        fprintf(stderr, "error: %s\n", rm_last_error());
        return SH_ERROR;
    }
    sh->s.interrupt = 0;
    rm_clear_error();
    int rc = c->run(sh, argc, argv);
    if (rc == SH_ERROR)
        fprintf(stderr, "error: %s: %s\n", c->name, rm_last_error());
    fflush(stdout);
    return rc;
}
