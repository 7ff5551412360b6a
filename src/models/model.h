/* Networks of the paper built on the graph: each returns logits and the three
 * stage features that the RMI score compares. Every builder takes the number
 * of classes and the side of the square input images (3 x hw x hw: 32 for
 * CIFAR, 16 for ImageNet16-120). */
#ifndef RM_MODEL_H
#define RM_MODEL_H

#include "nn/graph.h"
#include "space/nb201.h"

struct st_file;

typedef struct model {
    graph *g;
    int input;     /* (3,hw,hw) */
    int logits;    /* (nclass,1,1) */
    int feat[3];   /* stage outputs */
    int nclass;
    char name[1024];   /* the architecture string (a DARTS genotype: ~400 characters) */
} model;

/* ResNet-20/32/44/56 for CIFAR (He et al., option-A shortcuts; akamaster's
 * layout and key names); depth = 6n+2. Features: layer1, layer2, layer3. */
int resnet_cifar_build(model *m, const backend *be, int depth, int nclass, int hw);
/* ResNet-18/34/50/101/152 for 32x32 inputs as in the released RMI-NAS code's
 * CIFAR-100 teacher (ResNet-101; weiaicunzai/pytorch-cifar100's layout and
 * key names: conv1.0, conv2_x.0.residual_function.3, ...shortcut.0, fc):
 * a 3x3 stem of 64 channels without pooling, four stages of basic (18, 34)
 * or bottleneck (50, 101, 152) blocks with 1x1 projection shortcuts.
 * Features: conv2_x, conv4_x, conv5_x (that code's feature_extractor). */
int resnet_c100_build(model *m, const backend *be, int depth, int nclass, int hw);

/* NAS-Bench-201 network (C = 16, N = 5). Features: output of cell 4,
 * output of cell 10, and the final BN+ReLU. Key names as D-X-Y's
 * TinyNetwork (stem.0.weight, cells.3.layers.1.op.1.weight, ...). */
int nb201_net_build(model *m, const backend *be, const nb201_arch *arch, int nclass, int hw);

/* The MobileNet-like chain network (chain_net.c): CHAIN_LAYERS searchable
 * layers, CHAIN_PER_STAGE in each of 3 stages, each one of CHAIN_NOPS blocks
 * (skip, k3e3, k3e6, k5e3, k5e6, k7e3, k7e6: kernel x expansion). String
 * form: the blocks joined by '-' within a stage and '|' between stages. */
enum { CHAIN_PER_STAGE = 4, CHAIN_LAYERS = 3 * CHAIN_PER_STAGE, CHAIN_NOPS = 7 };
extern const char *const chain_op_names[CHAIN_NOPS];
int chain_net_build(model *m, const backend *be, const uint8_t *layers, int nclass, int hw);
void chain_format(const uint8_t *layers, char *buf, size_t size);
int chain_parse(const char *s, uint8_t *layers);

/* The DARTS network (darts_net.c): C = 16, 8 cells, stem multiplier 3, the
 * same cell for normal and reduction cells; features after cells 1, 4, 7.
 * The cell is DARTS_EDGES edge values (node j's input k at darts_edge(j, k)):
 * 0 = not kept, 1..DARTS_NOPS = darts_op_names[value - 1]; each node keeps
 * exactly 2. String form: DARTS's Genotype(normal=[('sep_conv_3x3', 0), ...],
 * normal_concat=[2, 3, 4, 5], reduce=..., reduce_concat=...), printed with
 * each node's inputs in ascending order. */
enum { DARTS_NODES = 4, DARTS_EDGES = 14, DARTS_NOPS = 7 };
extern const char *const darts_op_names[DARTS_NOPS];
int darts_edge(int node, int input);
int darts_valid(const uint8_t *edges);
int darts_net_build(model *m, const backend *be, const uint8_t *edges, int nclass, int hw);
/* The same network with C channels in the first cells and `layers` cells
 * (layers >= 8 for the three features). */
int darts_net_build_sized(model *m, const backend *be, const uint8_t *edges, int nclass, int hw,
                          int C, int layers);
void darts_format(const uint8_t *edges, char *buf, size_t size);
int darts_parse(const char *s, uint8_t *edges);

void model_free(model *m);
/* Builders' shared start: a new graph in m with a (3,hw,hw) input m->input
 * and nclass classes; NULL when out of memory. */
graph *model_start(model *m, const backend *be, int nclass, int hw);
/* Builders' shared ends: model_feature records x as feature tap i (an output
 * of the graph); model_finish adds global average pool + Linear (to
 * m->nclass) named `classifier` on x and checks the build, freeing m and
 * naming `what` on failure. */
int model_feature(model *m, int i, int x);
int model_finish(model *m, int x, const char *classifier, const char *what);

/* Load a state dict (safetensors) by PyTorch key: every entry of the model
 * must be present with the same shape (num_batches_tracked may be missing);
 * with strict, keys the model lacks are an error too. Errors name the key. */
int model_load_state(model *m, const struct st_file *f, int strict);
int model_load_file(model *m, const char *path);
/* Save every state-dict entry (num_batches_tracked as I64) with optional
 * metadata, atomically. */
int model_save_file(model *m, const char *path, const char *const *meta_key,
                    const char *const *meta_val, int nmeta);

#endif
