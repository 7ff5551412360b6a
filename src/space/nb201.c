#include "space/nb201.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

const int nb201_edge_from[NB201_EDGES] = {0, 0, 1, 0, 1, 2};
const int nb201_edge_to[NB201_EDGES] = {1, 2, 2, 3, 3, 3};
const char *const nb201_op_names[NB201_NOPS] = {
    "none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"};

int nb201_op_lookup(const char *name, size_t len)
{
    for (int i = 0; i < NB201_NOPS; i++)
        if (strlen(nb201_op_names[i]) == len && !strncmp(name, nb201_op_names[i], len))
            return i;
    return -1;
}

static int expect(const char *s, size_t *pos, char c, const char *where)
{
    if (s[*pos] != c) {
        if (!s[*pos])
            return rm_error("architecture string ends early at offset %zu (%s): expected '%c'",
                            *pos, where, c);
        return rm_error("architecture string: at offset %zu (%s) expected '%c', found '%c'",
                        *pos, where, c, s[*pos]);
    }
    (*pos)++;
    return 0;
}

int nb201_parse(const char *str, nb201_arch *a)
{
    while (isspace((unsigned char)*str))
        str++;
    size_t len = strlen(str);
    while (len && isspace((unsigned char)str[len - 1]))
        len--;
    char s[NB201_STRLEN * 2];
    if (len == 0)
        return rm_error("empty architecture string; expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|");
    if (len >= sizeof s)
        return rm_error("architecture string too long (%zu characters)", len);
    memcpy(s, str, len);
    s[len] = '\0';

    size_t pos = 0;
    int e = 0;
    for (int node = 1; node <= 3; node++) {
        char where[64];
        if (node > 1) {
            snprintf(where, sizeof where, "between node %d and node %d", node - 1, node);
            if (s[pos] && s[pos] != '+')
                return rm_error("architecture string: node %d has more than %d input(s) "
                                "(offset %zu)", node - 1, node - 1, pos);
            if (expect(s, &pos, '+', where) < 0)
                return -1;
        }
        snprintf(where, sizeof where, "start of node %d", node);
        if (expect(s, &pos, '|', where) < 0)
            return -1;
        for (int in = 0; in < node; in++, e++) {
            size_t start = pos;
            while (s[pos] && s[pos] != '~' && s[pos] != '|' && s[pos] != '+')
                pos++;
            int op = nb201_op_lookup(s + start, pos - start);
            if (op < 0 && !s[start])
                return rm_error("architecture string ends early at offset %zu (node %d, input "
                                "%d): expected an operation", start, node, in);
            if (op < 0)
                return rm_error("architecture string: node %d, input %d (offset %zu): unknown "
                                "operation '%.*s'; expected none, skip_connect, nor_conv_1x1, "
                                "nor_conv_3x3 or avg_pool_3x3",
                                node, in, start, (int)(pos - start), s + start);
            snprintf(where, sizeof where, "node %d, input %d", node, in);
            if (expect(s, &pos, '~', where) < 0)
                return -1;
            if (!isdigit((unsigned char)s[pos]) || isdigit((unsigned char)s[pos + 1]) ||
                s[pos] - '0' != in)
                return rm_error("architecture string: node %d, input %d (offset %zu): expected "
                                "'~%d' after the operation",
                                node, in, pos, in);
            pos++;
            if (s[pos] == '+' || !s[pos]) {
                if (in + 1 < node)
                    return rm_error("architecture string: node %d has %d input(s), expected %d "
                                    "(offset %zu)", node, in + 1, node, pos);
            }
            if (expect(s, &pos, '|', where) < 0)
                return -1;
            a->op[e] = (uint8_t)op;
            if (in + 1 < node && (s[pos] == '+' || !s[pos]))
                return rm_error("architecture string: node %d has %d input(s), expected %d "
                                "(offset %zu)", node, in + 1, node, pos);
        }
    }
    if (s[pos] == '|' || s[pos] == '~' || (s[pos] && s[pos] != '+'))
        return rm_error("architecture string: node 3 has more than 3 inputs or trailing text "
                        "at offset %zu", pos);
    if (s[pos] == '+')
        return rm_error("architecture string: more than 3 nodes (offset %zu); NAS-Bench-201 "
                        "cells have nodes 1, 2 and 3", pos);
    return 0;
}

void nb201_format(const nb201_arch *a, char *buf, size_t size)
{
    size_t o = 0;
    int e = 0;
    buf[0] = '\0';
    for (int node = 1; node <= 3; node++) {
        if (node > 1)
            o += (size_t)snprintf(buf + o, o < size ? size - o : 0, "+");
        o += (size_t)snprintf(buf + o, o < size ? size - o : 0, "|");
        for (int in = 0; in < node; in++, e++)
            o += (size_t)snprintf(buf + o, o < size ? size - o : 0, "%s~%d|",
                                  nb201_op_names[a->op[e]], in);
    }
}

int nb201_index(const nb201_arch *a)
{
    int idx = 0;
    for (int e = 0; e < NB201_EDGES; e++)
        idx = idx * NB201_NOPS + a->op[e];
    return idx;
}

void nb201_from_index(int index, nb201_arch *a)
{
    for (int e = NB201_EDGES - 1; e >= 0; e--) {
        a->op[e] = (uint8_t)(index % NB201_NOPS);
        index /= NB201_NOPS;
    }
}
