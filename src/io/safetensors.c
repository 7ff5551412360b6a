#define _POSIX_C_SOURCE 200809L

#include "io/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"
#include "util/err.h"

/* Tensor data is copied between file and memory as is. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian and is copied without byte swapping"
#endif

#define META_KEY "__metadata__"

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [ST_F32] = {"F32", 4}, [ST_F64] = {"F64", 8}, [ST_F16] = {"F16", 2},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_U8] = {"U8", 1},
};
#define N_DTYPES ((int)(sizeof dtype_info / sizeof dtype_info[0]))

static int dtype_valid(st_dtype dt) { return (int)dt >= 0 && (int)dt < N_DTYPES; }

size_t st_dtype_size(st_dtype dt) { return dtype_valid(dt) ? dtype_info[dt].size : 0; }

const char *st_dtype_name(st_dtype dt) { return dtype_valid(dt) ? dtype_info[dt].name : "?"; }

static int dtype_parse(const char *s, st_dtype *dt)
{
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(s, dtype_info[i].name) == 0) {
            *dt = (st_dtype)i;
            return 0;
        }
    return -1;
}

int64_t st_numel(const st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

/* numel * element size of a shape, or -1 on overflow. */
static int shape_nbytes(const int64_t *shape, int ndim, st_dtype dt, size_t *nbytes)
{
    size_t b = st_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX)
            return -1;
        if (__builtin_mul_overflow(b, (size_t)shape[i], &b))
            return -1;
    }
    *nbytes = b;
    return 0;
}

/* "[16, 3, 3, 3]" into buf (truncated to cap). */
static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t len = 0;
    len += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
    return buf;
}

void st_free(st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].data);
    }
    free(f->t);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_key[i]);
        free(f->meta_val[i]);
    }
    free(f->meta_key);
    free(f->meta_val);
    memset(f, 0, sizeof *f);
}

static int read_whole_file(const char *path, unsigned char **buf, size_t *size)
{
    unsigned char *b = NULL;
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rm_error("%s: cannot open: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0) {
        rm_error("%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rm_error("%s: not a regular file", path);
        goto fail;
    }
    size_t n = (size_t)st.st_size;
    b = malloc(n ? n : 1);
    if (!b) {
        rm_error("%s: out of memory reading %zu bytes", path, n);
        goto fail;
    }
    size_t got = fread(b, 1, n, f);
    if (got != n) {
        rm_error("%s: read error at byte %zu of %zu%s%s", path, got, n, ferror(f) ? ": " : "",
                 ferror(f) ? strerror(errno) : "");
        goto fail;
    }
    fclose(f);
    *buf = b;
    *size = n;
    return 0;
fail:
    free(b);
    fclose(f);
    return -1;
}

/* One header entry while loading: the tensor plus where its data lies. */
typedef struct st_entry {
    st_tensor t;
    size_t begin, end; /* relative to the data start */
    int order;         /* position in the JSON object, to keep sorting stable */
} st_entry;

static int entry_cmp(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->order - y->order;
}

static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* Parse one tensor entry (name -> {dtype, shape, data_offsets}); checks that the
 * offsets span exactly shape * dtype size. hdr_end is the file offset of the data. */
static int parse_entry(const char *path, const char *name, json_t *v, size_t hdr_end, st_entry *e)
{
    char sbuf[200];
    if (!json_is_object(v))
        return rm_error("%s: tensor '%s': header entry is not a JSON object", path, name);

    json_t *dt = json_object_get(v, "dtype");
    if (!dt)
        return rm_error("%s: tensor '%s': missing dtype", path, name);
    if (!json_is_string(dt))
        return rm_error("%s: tensor '%s': dtype is not a string", path, name);
    if (dtype_parse(json_string_value(dt), &e->t.dtype) != 0)
        return rm_error("%s: tensor '%s': unknown dtype \"%s\" (supported: F32, F64, F16, I64, "
                        "I32, U8)", path, name, json_string_value(dt));

    json_t *shape = json_object_get(v, "shape");
    if (!shape)
        return rm_error("%s: tensor '%s': missing shape", path, name);
    if (!json_is_array(shape))
        return rm_error("%s: tensor '%s': shape is not an array", path, name);
    if (json_array_size(shape) > ST_MAX_DIMS)
        return rm_error("%s: tensor '%s': shape has %zu dimensions, at most %d are supported",
                        path, name, json_array_size(shape), ST_MAX_DIMS);
    e->t.ndim = (int)json_array_size(shape);
    for (int i = 0; i < e->t.ndim; i++) {
        uint64_t d;
        if (get_u64(json_array_get(shape, (size_t)i), &d) != 0)
            return rm_error("%s: tensor '%s': shape[%d] is not a non-negative integer", path,
                            name, i);
        e->t.shape[i] = (int64_t)d;
    }
    shape_str(e->t.shape, e->t.ndim, sbuf, sizeof sbuf);
    if (shape_nbytes(e->t.shape, e->t.ndim, e->t.dtype, &e->t.nbytes) != 0)
        return rm_error("%s: tensor '%s': shape %s of %s is too large", path, name, sbuf,
                        st_dtype_name(e->t.dtype));

    json_t *off = json_object_get(v, "data_offsets");
    uint64_t b, en;
    if (!off)
        return rm_error("%s: tensor '%s': missing data_offsets", path, name);
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        get_u64(json_array_get(off, 0), &b) != 0 || get_u64(json_array_get(off, 1), &en) != 0)
        return rm_error("%s: tensor '%s': data_offsets is not [begin, end] with non-negative "
                        "integers", path, name);
    if (b > en)
        return rm_error("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] out of range: "
                        "begin is past end", path, name, b, en);
    if (en > SIZE_MAX - hdr_end)
        return rm_error("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] out of range",
                        path, name, b, en);
    if (en - b != e->t.nbytes)
        return rm_error("%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] (file bytes "
                        "%zu..%zu) hold %" PRIu64 " bytes but shape %s of %s needs %zu",
                        path, name, b, en, hdr_end + (size_t)b, hdr_end + (size_t)en, en - b,
                        sbuf, st_dtype_name(e->t.dtype), e->t.nbytes);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return 0;
}

static int parse_metadata(const char *path, json_t *m, st_file *out)
{
    if (!json_is_object(m))
        return rm_error("%s: __metadata__ is not a JSON object", path);
    size_t n = json_object_size(m);
    out->meta_key = calloc(n ? n : 1, sizeof *out->meta_key);
    out->meta_val = calloc(n ? n : 1, sizeof *out->meta_val);
    if (!out->meta_key || !out->meta_val)
        return rm_error("%s: out of memory", path);
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) {
        if (!json_is_string(v))
            return rm_error("%s: __metadata__ value for '%s' is not a string", path, k);
        int i = out->nmeta;
        out->meta_key[i] = strdup(k);
        out->meta_val[i] = strdup(json_string_value(v));
        out->nmeta++; /* counted before checking, so st_free releases a half-made pair */
        if (!out->meta_key[i] || !out->meta_val[i])
            return rm_error("%s: out of memory", path);
    }
    return 0;
}

int st_load(const char *path, st_file *out)
{
    unsigned char *buf = NULL;
    size_t size = 0;
    json_t *root = NULL;
    st_entry *ents = NULL;
    st_file res = {0};
    int nent = 0;

    memset(out, 0, sizeof *out);
    if (read_whole_file(path, &buf, &size) != 0)
        return -1;
    if (size < 8) {
        rm_error("%s: file is %zu bytes, shorter than the 8-byte header length", path, size);
        goto fail;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | buf[i];
    if (hlen > size - 8) {
        rm_error("%s: header length %" PRIu64 " (bytes 0..7) runs past the end of the file: "
                 "header would end at byte %" PRIu64 ", file has %zu bytes",
                 path, hlen, hlen + 8 < hlen ? UINT64_MAX : hlen + 8, size);
        goto fail;
    }
    size_t hdr_end = 8 + (size_t)hlen;
    size_t data_len = size - hdr_end;

    json_error_t jerr;
    root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        rm_error("%s: invalid JSON header at byte %zu (line %d, column %d): %s", path,
                 8 + (size_t)(jerr.position > 0 ? jerr.position : 0), jerr.line, jerr.column,
                 jerr.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        rm_error("%s: JSON header (bytes 8..%zu) is not an object", path, hdr_end);
        goto fail;
    }

    size_t nkeys = json_object_size(root);
    ents = calloc(nkeys ? nkeys : 1, sizeof *ents);
    if (!ents) {
        rm_error("%s: out of memory", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, META_KEY) == 0) {
            if (parse_metadata(path, val, &res) != 0)
                goto fail;
            continue;
        }
        st_entry *e = &ents[nent];
        if (parse_entry(path, key, val, hdr_end, e) != 0)
            goto fail;
        e->order = nent;
        e->t.name = strdup(key);
        nent++;
        if (!e->t.name) {
            rm_error("%s: out of memory", path);
            goto fail;
        }
    }

    qsort(ents, (size_t)nent, sizeof *ents, entry_cmp);
    const st_entry *prev = NULL, *last = NULL;
    for (int i = 0; i < nent; i++) {
        const st_entry *e = &ents[i];
        if (!last || e->end > last->end)
            last = e;
        if (e->begin == e->end)
            continue;
        if (prev && e->begin < prev->end) {
            rm_error("%s: tensors '%s' (data bytes %zu..%zu) and '%s' (data bytes %zu..%zu) "
                     "overlap", path, prev->t.name, prev->begin, prev->end, e->t.name,
                     e->begin, e->end);
            goto fail;
        }
        prev = e;
    }
    if (last && last->end > data_len) {
        rm_error("%s: truncated: expected %zu bytes of data, file has %zu at offset %zu "
                 "(tensor '%s' ends at byte %zu)", path, last->end, data_len, hdr_end,
                 last->t.name, hdr_end + last->end);
        goto fail;
    }

    res.t = calloc((size_t)(nent ? nent : 1), sizeof *res.t);
    if (!res.t) {
        rm_error("%s: out of memory", path);
        goto fail;
    }
    for (int i = 0; i < nent; i++) {
        st_entry *e = &ents[i];
        res.t[i] = e->t;
        e->t.name = NULL; /* now owned by res */
        res.n++;
        res.t[i].data = malloc(e->t.nbytes ? e->t.nbytes : 1);
        if (!res.t[i].data) {
            rm_error("%s: out of memory for tensor '%s' (%zu bytes)", path, res.t[i].name,
                     e->t.nbytes);
            goto fail;
        }
        memcpy(res.t[i].data, buf + hdr_end + e->begin, e->t.nbytes);
    }

    free(ents);
    json_decref(root);
    free(buf);
    *out = res;
    return 0;
fail:
    if (ents)
        for (int i = 0; i < nent; i++)
            free(ents[i].t.name);
    free(ents);
    st_free(&res);
    json_decref(root);
    free(buf);
    return -1;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0)
            return &f->t[i];
    return NULL;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        float v = (float)man * 0x1p-24f; /* zero or subnormal, exact */
        return sign ? -v : v;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int st_read_f32(const st_file *f, const char *name, float *dst, int64_t n)
{
    const st_tensor *t = st_find(f, name);
    if (!t)
        return rm_error("no tensor '%s'", name);
    int64_t numel = st_numel(t);
    if (numel != n) {
        char sbuf[200];
        return rm_error("tensor '%s': shape %s has %" PRId64 " elements, expected %" PRId64,
                        name, shape_str(t->shape, t->ndim, sbuf, sizeof sbuf), numel, n);
    }
    const unsigned char *p = t->data;
    size_t es = st_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++, p += es) {
        switch (t->dtype) {
        case ST_F32: memcpy(&dst[i], p, 4); break;
        case ST_F64: { double v; memcpy(&v, p, 8); dst[i] = (float)v; break; }
        case ST_F16: { uint16_t v; memcpy(&v, p, 2); dst[i] = half_to_float(v); break; }
        case ST_I64: { int64_t v; memcpy(&v, p, 8); dst[i] = (float)v; break; }
        case ST_I32: { int32_t v; memcpy(&v, p, 4); dst[i] = (float)v; break; }
        case ST_U8: dst[i] = (float)*p; break;
        default: return rm_error("tensor '%s': invalid dtype %d", name, (int)t->dtype);
        }
    }
    return 0;
}

/* json_object_set_new that reports failure (NULL value or out of memory). */
static int jset(json_t *obj, const char *key, json_t *v)
{
    return v ? json_object_set_new(obj, key, v) : -1;
}

/* The header JSON for st_save, with data offsets assigned in the given order. */
static json_t *build_header(const char *path, const st_tensor *t, int n,
                            const char *const *meta_key, const char *const *meta_val, int nmeta)
{
    json_t *root = json_object();
    if (!root) {
        rm_error("%s: out of memory", path);
        return NULL;
    }
    if (nmeta > 0) {
        json_t *m = json_object();
        if (jset(root, META_KEY, m) != 0)
            goto oom;
        for (int i = 0; i < nmeta; i++) {
            if (!meta_key[i] || !meta_val[i]) {
                rm_error("%s: metadata entry %d has a NULL key or value", path, i);
                goto fail;
            }
            if (json_object_get(m, meta_key[i])) {
                rm_error("%s: duplicate metadata key '%s'", path, meta_key[i]);
                goto fail;
            }
            json_t *s = json_string(meta_val[i]);
            if (!s) {
                rm_error("%s: metadata '%s': value is not valid UTF-8", path, meta_key[i]);
                goto fail;
            }
            if (json_object_set_new(m, meta_key[i], s) != 0) {
                rm_error("%s: metadata key '%s' is not valid UTF-8", path, meta_key[i]);
                goto fail;
            }
        }
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const st_tensor *x = &t[i];
        size_t need;
        if (!x->name || strcmp(x->name, META_KEY) == 0) {
            rm_error("%s: tensor %d: invalid name '%s'", path, i, x->name ? x->name : "(null)");
            goto fail;
        }
        if (json_object_get(root, x->name)) {
            rm_error("%s: duplicate tensor name '%s'", path, x->name);
            goto fail;
        }
        if (!dtype_valid(x->dtype) || x->ndim < 0 || x->ndim > ST_MAX_DIMS) {
            rm_error("%s: tensor '%s': invalid dtype %d or ndim %d", path, x->name,
                     (int)x->dtype, x->ndim);
            goto fail;
        }
        if (shape_nbytes(x->shape, x->ndim, x->dtype, &need) != 0 || need != x->nbytes ||
            (need > 0 && !x->data)) {
            char sbuf[200];
            rm_error("%s: tensor '%s': nbytes %zu (data %s) does not match shape %s of %s", path,
                     x->name, x->nbytes, x->data ? "set" : "NULL",
                     shape_str(x->shape, x->ndim, sbuf, sizeof sbuf), st_dtype_name(x->dtype));
            goto fail;
        }
        if (off + need < off || off + need > (size_t)INT64_MAX) {
            rm_error("%s: total tensor data too large", path);
            goto fail;
        }
        json_t *shape = json_array(), *offs = json_array();
        int bad = !shape || !offs;
        for (int d = 0; !bad && d < x->ndim; d++)
            bad = json_array_append_new(shape, json_integer(x->shape[d])) != 0;
        if (bad || json_array_append_new(offs, json_integer((json_int_t)off)) != 0 ||
            json_array_append_new(offs, json_integer((json_int_t)(off + need))) != 0) {
            json_decref(shape);
            json_decref(offs);
            goto oom;
        }
        /* json_pack steals shape and offs, also on failure */
        json_t *e = json_pack("{s:s, s:o, s:o}", "dtype", st_dtype_name(x->dtype), "shape", shape,
                              "data_offsets", offs);
        if (!e)
            goto oom;
        if (json_object_set_new(root, x->name, e) != 0) {
            rm_error("%s: tensor name '%s' is not valid UTF-8", path, x->name);
            goto fail;
        }
        off += need;
    }
    return root;
oom:
    rm_error("%s: out of memory building the header", path);
fail:
    json_decref(root);
    return NULL;
}

int st_save(const char *path, const st_tensor *t, int n, const char *const *meta_key,
            const char *const *meta_val, int nmeta)
{
    json_t *root = NULL;
    char *hdr = NULL;

    if (n < 0 || nmeta < 0 || (n > 0 && !t) || (nmeta > 0 && (!meta_key || !meta_val)))
        return rm_error("%s: invalid arguments to st_save (n %d, nmeta %d)", path, n, nmeta);
    root = build_header(path, t, n, meta_key, meta_val, nmeta);
    if (!root)
        return -1;
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) {
        rm_error("%s: cannot serialize the header", path);
        goto fail;
    }
    size_t len = strlen(hdr), padded = (len + 7) / 8 * 8;
    static const char spaces[8] = "        ";
    unsigned char lenbuf[8];
    for (int i = 0; i < 8; i++)
        lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));

    size_t nbuf = (size_t)n + 3;
    const void **buf = malloc(nbuf * sizeof *buf);
    size_t *lens = malloc(nbuf * sizeof *lens);
    int rc = -1;
    if (!buf || !lens) {
        rm_error("%s: out of memory", path);
    } else {
        buf[0] = lenbuf;
        lens[0] = 8;
        buf[1] = hdr;
        lens[1] = len;
        buf[2] = spaces;
        lens[2] = padded - len;
        for (int i = 0; i < n; i++) {
            buf[3 + i] = t[i].data;
            lens[3 + i] = t[i].nbytes;
        }
        rc = rm_write_atomic(path, buf, lens, (int)nbuf);
    }
    free(buf);
    free(lens);
    free(hdr);
    json_decref(root);
    return rc;
fail:
    free(hdr);
    json_decref(root);
    return -1;
}
