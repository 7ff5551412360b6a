/* NAS-Bench-201 architecture strings: parse/print round trip over the whole
 * space and over the benchmark table's strings, the canonical index, and
 * clear errors for malformed strings. */
#include <stdlib.h>
#include <string.h>

#include "models/model.h"
#include "space/nb201.h"
#include "tap.h"
#include "util/err.h"

static void bad(const char *s, const char *expect)
{
    nb201_arch a;
    int rc = nb201_parse(s, &a);
    tap_ok(rc < 0 && strstr(rm_last_error(), expect), "rejects '%s': %s", s,
           rc < 0 ? rm_last_error() : "(accepted)");
}

int main(void)
{
    /* every index round-trips through the string form */
    int ok = 1;
    for (int i = 0; i < NB201_COUNT && ok; i++) {
        nb201_arch a, b;
        char s[NB201_STRLEN];
        nb201_from_index(i, &a);
        nb201_format(&a, s, sizeof s);
        ok = nb201_parse(s, &b) == 0 && !memcmp(&a, &b, sizeof a) && nb201_index(&b) == i;
    }
    tap_ok(ok, "all 15625 architectures round-trip index -> string -> index");

    /* the benchmark table's strings parse and print back identically */
    const char *shared = getenv("SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/data/nb201/nb201.csv", shared ? shared : "../shared");
    FILE *f = fopen(path, "r");
    if (f) {
        char line[1024];
        int rows = 0, good = 0, seen[NB201_COUNT] = {0}, dup = 0;
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        while (fgets(line, sizeof line, f)) {
            char *a1 = strchr(line, ','), *a2 = a1 ? strchr(a1 + 1, ',') : NULL;
            if (!a2)
                continue;
            *a2 = '\0';
            nb201_arch a;
            char s[NB201_STRLEN];
            rows++;
            if (nb201_parse(a1 + 1, &a) == 0) {
                nb201_format(&a, s, sizeof s);
                good += !strcmp(s, a1 + 1);
                dup += seen[nb201_index(&a)]++ > 0;
            }
        }
        fclose(f);
        tap_ok(rows == NB201_COUNT && good == rows && dup == 0,
               "benchmark table: %d rows, %d round-trip exactly, %d duplicates", rows, good, dup);
    } else {
        tap_skip("no benchmark table at %s", path);
    }

    nb201_arch a;
    tap_ok(nb201_parse("  |nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|"
                       "skip_connect~2|\n", &a) == 0 &&
               a.op[0] == NB201_CONV3 && a.op[1] == NB201_NONE && a.op[5] == NB201_SKIP,
           "parses the ResNet cell with surrounding blanks");

    bad("", "empty");
    bad("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'");
    bad("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "expected '~0'");
    bad("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 input");
    bad("|none~0|+|none~0|none~1|", "ends early");
    bad("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "more than 3 inputs");
    bad("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "more than 3 nodes");
    bad("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 has more than 1");
    bad("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation");
    bad("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "expected '|'");

    /* #params and MACs of the reference's 100 sampled architectures, counted by
     * rmi_ref.py (count_params, count_flops) */
    snprintf(path, sizeof path, "%s/reference/rmi_scores_seed2026.csv", shared ? shared : "../shared");
    f = fopen(path, "r");
    if (f) {
        char line[2048];
        int rows = 0, match = 0;
        if (!fgets(line, sizeof line, f))
            line[0] = '\0';
        while (fgets(line, sizeof line, f)) {
            /* index,arch,score,cka1,cka2,cka3,ce,seconds,params,flops */
            char *field[10];
            int nf = 0;
            for (char *p = strtok(line, ",\n"); p && nf < 10; p = strtok(NULL, ",\n"))
                field[nf++] = p;
            if (nf < 10 || nb201_parse(field[1], &a) < 0)
                continue;
            model m;
            if (nb201_net_build(&m, backend_cpu(), &a, 10, 32) < 0)
                continue;
            rows++;
            long long p = (long long)graph_count_trainable(m.g);
            long long macs = (long long)graph_count_macs(m.g);
            if (p == atoll(field[8]) && macs == atoll(field[9]))
                match++;
            else
                tap_diag("%s: ours %lld params %lld MACs, reference %s %s", field[1], p, macs,
                         field[8], field[9]);
            model_free(&m);
        }
        fclose(f);
        tap_ok(rows == 100 && match == rows,
               "#params and MACs equal the reference's for %d of %d sampled architectures", match,
               rows);
    } else {
        tap_skip("no reference scores at %s", path);
    }
    printf("1..%d\n", tap_n);
    return tap_done();
}
