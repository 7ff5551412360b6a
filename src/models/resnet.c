/* ResNet for CIFAR with option-A shortcuts (akamaster/pytorch_resnet_cifar10). */
#include <stdio.h>
#include <string.h>

#include "models/model.h"
#include "util/err.h"

/* BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)) */
static int basic_block(graph *g, int x, int cin, int planes, int stride, const char *pfx)
{
    char name[96];
    snprintf(name, sizeof name, "%s.conv1", pfx);
    int h = graph_conv(g, x, planes, 3, stride, 1, 1, 1, 0, 0, name, -1);
    snprintf(name, sizeof name, "%s.bn1", pfx);
    h = graph_relu(g, graph_bn(g, h, name, -1));
    snprintf(name, sizeof name, "%s.conv2", pfx);
    h = graph_conv(g, h, planes, 3, 1, 1, 1, 1, 0, 0, name, -1);
    snprintf(name, sizeof name, "%s.bn2", pfx);
    int out = graph_bn(g, h, name, -1);
    if (stride != 1 || cin != planes)
        out = graph_shortcut_a(g, x, planes, out);
    else
        out = graph_add(g, x, out);
    return graph_relu(g, out);
}

int resnet_cifar_build(model *m, const backend *be, int depth, int nclass, int hw)
{
    memset(m, 0, sizeof *m);
    if (depth < 8 || (depth - 2) % 6)
        return rm_error("ResNet depth must be 6n+2 (20, 32, 44, 56, ...), got %d", depth);
    int nb = (depth - 2) / 6;
    graph *g = model_start(m, be, nclass, hw);
    if (!g)
        return -1;
    snprintf(m->name, sizeof m->name, "resnet%d", depth);
    int x = m->input;
    x = graph_conv(g, x, 16, 3, 1, 1, 1, 1, 0, 0, "conv1", -1);
    x = graph_relu(g, graph_bn(g, x, "bn1", -1));
    int cin = 16;
    for (int l = 0; l < 3; l++) {
        int planes = 16 << l;
        for (int b = 0; b < nb; b++) {
            char pfx[32];
            snprintf(pfx, sizeof pfx, "layer%d.%d", l + 1, b);
            x = basic_block(g, x, cin, planes, b == 0 && l > 0 ? 2 : 1, pfx);
            cin = planes;
        }
        model_feature(m, l, x);
    }
    return model_finish(m, x, "linear", m->name);
}

/* ---- the CIFAR-100 family (the released RMI-NAS code's ResNet-101 teacher) ---- */

/* conv (no bias) -> BN [-> ReLU], PyTorch names PFX.I and PFX.I+1 */
static int conv_bn(graph *g, int x, int cout, int k, int stride, const char *pfx, int i,
                   int relu)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%d", pfx, i);
    int h = graph_conv(g, x, cout, k, stride, k / 2, 1, 1, 0, 0, name, -1);
    snprintf(name, sizeof name, "%s.%d", pfx, i + 1);
    h = graph_bn(g, h, name, -1);
    return relu ? graph_relu(g, h) : h;
}

/* relu(residual_function(x) + shortcut(x)); a basic block (two 3x3) or a
 * bottleneck (1x1, 3x3 with the stride, 1x1 to 4*planes); the shortcut is
 * a 1x1 convolution + BN where the shape changes. */
static int c100_block(graph *g, int x, int cin, int planes, int stride, int bottleneck,
                      const char *pfx)
{
    char rf[80], sc[80];
    snprintf(rf, sizeof rf, "%s.residual_function", pfx);
    snprintf(sc, sizeof sc, "%s.shortcut", pfx);
    const int cout = bottleneck ? 4 * planes : planes;
    int h;
    if (bottleneck) {
        h = conv_bn(g, x, planes, 1, 1, rf, 0, 1);
        h = conv_bn(g, h, planes, 3, stride, rf, 3, 1);
        h = conv_bn(g, h, cout, 1, 1, rf, 6, 0);
    } else {
        h = conv_bn(g, x, planes, 3, stride, rf, 0, 1);
        h = conv_bn(g, h, planes, 3, 1, rf, 3, 0);
    }
    const int s = stride != 1 || cin != cout ? conv_bn(g, x, cout, 1, stride, sc, 0, 0) : x;
    return graph_relu(g, graph_add(g, s, h));
}

int resnet_c100_build(model *m, const backend *be, int depth, int nclass, int hw)
{
    static const struct {
        int depth, bottleneck, blocks[4];
    } kinds[] = {{18, 0, {2, 2, 2, 2}},  {34, 0, {3, 4, 6, 3}},  {50, 1, {3, 4, 6, 3}},
                 {101, 1, {3, 4, 23, 3}}, {152, 1, {3, 8, 36, 3}}};
    int k = 0;
    while (k < 5 && kinds[k].depth != depth)
        k++;
    memset(m, 0, sizeof *m);
    if (k == 5)
        return rm_error("ResNet depth for the CIFAR-100 family must be 18, 34, 50, 101 or 152, "
                        "got %d", depth);
    graph *g = model_start(m, be, nclass, hw);
    if (!g)
        return -1;
    snprintf(m->name, sizeof m->name, "resnet%d", depth);
    int x = conv_bn(g, m->input, 64, 3, 1, "conv1", 0, 1);
    int cin = 64;
    for (int l = 0; l < 4; l++) {
        const int planes = 64 << l;
        for (int b = 0; b < kinds[k].blocks[l]; b++) {
            char pfx[32];
            snprintf(pfx, sizeof pfx, "conv%d_x.%d", l + 2, b);
            x = c100_block(g, x, cin, planes, b == 0 && l > 0 ? 2 : 1, kinds[k].bottleneck, pfx);
            cin = kinds[k].bottleneck ? 4 * planes : planes;
        }
        if (l != 1) /* the released code's feature_extractor: conv2_x, conv4_x, conv5_x */
            model_feature(m, l ? l - 1 : 0, x);
    }
    return model_finish(m, x, "fc", m->name);
}
