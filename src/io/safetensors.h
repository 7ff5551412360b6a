/* safetensors files: PyTorch state-dict tensors by name, so weights move
 * between rminas and PyTorch without conversion code.
 *
 * Format: 8-byte little-endian u64 header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * then the raw little-endian data; offsets are relative to the data start (8 + N). */
#ifndef RM_SAFETENSORS_H
#define RM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F64, ST_F16, ST_I64, ST_I32, ST_U8 } st_dtype;

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;                     /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS];
    size_t nbytes;                /* numel * st_dtype_size(dtype) */
    void *data;                   /* little-endian elements, owned by the st_file */
} st_tensor;

typedef struct st_file {
    int n;                        /* tensors, in the file order of their data offsets */
    st_tensor *t;
    int nmeta;                    /* __metadata__ entries, in header order */
    char **meta_key;
    char **meta_val;
} st_file;

/* Read the whole file and validate header and data. On failure *out is left
 * empty (safe to st_free) and the message names the file and the problem. */
int st_load(const char *path, st_file *out);
/* The tensor called name, or NULL if absent. */
const st_tensor *st_find(const st_file *f, const char *name);
/* Product of the shape (1 for a scalar). */
int64_t st_numel(const st_tensor *t);
/* Bytes per element of a dtype. */
size_t st_dtype_size(st_dtype dt);
/* The header spelling of a dtype ("F32", ...). */
const char *st_dtype_name(st_dtype dt);
/* Copy tensor name into dst (n floats), converting F64/F16/I64/I32/U8 to
 * float32. -1 with a message naming the key if absent or if numel != n. */
int st_read_f32(const st_file *f, const char *name, float *dst, int64_t n);
/* Free everything st_load allocated and zero *f. */
void st_free(st_file *f);

/* Write n tensors in the given order with contiguous data offsets, the header
 * padded with spaces to a multiple of 8, and __metadata__ (string -> string)
 * when nmeta > 0. Atomic: writes PATH.tmp, fflush + fsync, rename. Each
 * t[i].nbytes must equal numel * dtype size; names must be unique. */
int st_save(const char *path, const st_tensor *t, int n, const char *const *meta_key,
            const char *const *meta_val, int nmeta);

#endif
