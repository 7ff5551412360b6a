/* NAS-Bench-201 cell architectures: 4 nodes, 6 edges (0->1, 0->2, 1->2,
 * 0->3, 1->3, 2->3), 5 operations; string form
 * |op~0|+|op~0|op~1|+|op~0|op~1|op~2| (edge e's input node after '~'). */
#ifndef RM_NB201_H
#define RM_NB201_H

#include <stddef.h>
#include <stdint.h>

enum { NB201_EDGES = 6, NB201_NOPS = 5, NB201_COUNT = 15625 };
enum nb201_op { NB201_NONE, NB201_SKIP, NB201_CONV1, NB201_CONV3, NB201_AVGPOOL };

/* Edge e goes from node nb201_edge_from[e] to node nb201_edge_to[e]. */
extern const int nb201_edge_from[NB201_EDGES];
extern const int nb201_edge_to[NB201_EDGES];
extern const char *const nb201_op_names[NB201_NOPS];

typedef struct nb201_arch {
    uint8_t op[NB201_EDGES];
} nb201_arch;

/* Parse a string; on error rm_error says which part is wrong (node, edge,
 * character offset) and what was expected. Surrounding blanks are ignored. */
int nb201_parse(const char *s, nb201_arch *a);
/* Print the canonical string (at most NB201_STRLEN bytes with the NUL). */
enum { NB201_STRLEN = 128 };
void nb201_format(const nb201_arch *a, char *buf, size_t size);
/* Canonical index 0..15624: the ops as base-5 digits, edge 0 most
 * significant (rminas's own numbering; the benchmark's index differs, so
 * tables are always joined by string). */
int nb201_index(const nb201_arch *a);
void nb201_from_index(int index, nb201_arch *a);
/* Operation name -> index, or -1. */
int nb201_op_lookup(const char *name, size_t len);

#endif
