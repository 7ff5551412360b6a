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
