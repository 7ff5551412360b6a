/* Random-forest classifier of the search (RMI-NAS step 2): predicts which
 * unscored architectures are likely to score below tau.
 *
 * Semantics follow scikit-learn's RandomForestClassifier with its defaults
 * (sklearn/tree/_splitter.pyx BestSplitter, _tree.pyx DepthFirstTreeBuilder):
 *  - each tree sees a bootstrap sample of size n drawn with replacement; a
 *    sample drawn k times has weight k, samples never drawn are absent;
 *  - Gini impurity; a node is a leaf when it is pure, holds fewer than
 *    min_samples_split distinct samples, or sits at max_depth;
 *  - at a node, features are drawn without replacement; constant features
 *    (max - min <= 1e-7 over the node) are skipped and remembered for the
 *    node's descendants. The draw stops after max_features features, constant
 *    ones included, unless all of them were constant: then it goes on until
 *    a non-constant feature is found or none is left (sklearn's rule). A node
 *    whose features are all constant is a leaf;
 *  - every threshold between consecutive distinct sorted values (midpoint,
 *    values within 1e-7 count as equal) is a candidate; the best Gini
 *    decrease wins, the first found on ties. A split is taken even when the
 *    decrease is zero (as in sklearn: XOR is learnable by depth-2 trees);
 *  - a leaf holds the weighted class fractions of its training samples;
 *    predicted probabilities are the mean over trees.
 * The random stream differs from sklearn's, so forests agree in
 * distribution, not bit for bit. Features are compared in double (sklearn
 * casts to float32: only values closer than float precision behave
 * differently). Sample x goes left when x[feature] <= threshold, so a NaN
 * at prediction time goes right.
 */
#ifndef RM_FOREST_H
#define RM_FOREST_H

#include <stddef.h>
#include <stdint.h>

typedef struct forest_opts {
    int n_trees;           /* 30 */
    int max_features;      /* features drawn per split, 1..d; 0 = max(1, floor(sqrt(d))) */
    int bootstrap;         /* 1: bootstrap samples; 0: every tree sees all samples once */
    int max_depth;         /* 0 = unlimited; the root has depth 0 */
    int min_samples_split; /* >= 2: a node with fewer distinct samples is a leaf */
    uint64_t seed;         /* the whole forest is a function of the data and this */
} forest_opts;

/* The defaults above (sklearn's, n_estimators = 30), seed 0. */
void forest_opts_default(forest_opts *o);

typedef struct forest forest; /* opaque */

/* Fit on x (n x d, row-major, finite) with labels y (n) in [0, n_classes).
 * o == NULL means forest_opts_default. On success *out owns a new forest
 * (free with forest_free) and 0 is returned; on failure *out = NULL and -1
 * with rm_error (n, d, n_classes < 1, a label out of range, a non-finite
 * feature, invalid options, out of memory). */
int forest_fit(forest **out, const double *x, const int *y, int n, int d, int n_classes, const forest_opts *o);

/* proba (n x n_classes, row-major) = class probabilities of the samples x
 * (n x d, d as at fit time); every row sums to 1. */
void forest_predict_proba(const forest *f, const double *x, int n, double *proba);

int forest_n_features(const forest *f);
int forest_n_classes(const forest *f);

void forest_free(forest *f);

/* A flat, portable byte image of the forest (for a resumable search).
 * *buf is malloc'ed, the caller frees it. Layout, integers little-endian,
 * doubles as their IEEE-754 bits in a little-endian u64:
 *   "RMFOREST", u32 version (1), u32 n_trees, u32 n_features, u32 n_classes,
 *   then per tree: u32 n_nodes, then per node (pre-order, root first):
 *     i32 feature (-1 for a leaf), i32 left, i32 right (-1 for a leaf),
 *     f64 threshold (0 for a leaf), f64 value[n_classes] (class fractions).
 * Children always have larger indices than their parent. */
int forest_serialize(const forest *f, unsigned char **buf, size_t *len);
/* Rebuild a forest from forest_serialize's bytes; the image is validated
 * (sizes, indices, values) and -1 returned with rm_error when it is not one. */
int forest_deserialize(forest **out, const unsigned char *buf, size_t len);

#endif
