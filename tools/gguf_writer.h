/*
 * gguf_writer.h - builds GGUF v3 files in memory and writes them out.
 *
 * Used by the synthetic model maker and by tests that need valid (and then
 * deliberately broken) files. Key/value pairs and tensors are written in the
 * order they were added; tensor data is copied into the builder.
 *
 *     bn_gguf_writer *w = bn_gguf_writer_create(32);
 *     bn_gguf_writer_add_str(w, "general.architecture", "bitnet-b1.58");
 *     bn_gguf_writer_add_u32(w, "bitnet-b1.58.block_count", 30);
 *     bn_gguf_writer_add_tensor(w, "token_embd.weight", BN_TYPE_F16, 2, ne, data, nbytes);
 *     bn_gguf_writer_write_file(w, "out.gguf", err, sizeof err);   // atomic: tmp + rename
 *     bn_gguf_writer_destroy(w);
 *
 * The add functions return false only when out of memory; the builder then
 * stays unusable and write fails with BN_ERR_NOMEM.
 */
#ifndef BN_GGUF_WRITER_H
#define BN_GGUF_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../runtime/status.h"

typedef struct bn_gguf_writer bn_gguf_writer;

bn_gguf_writer *bn_gguf_writer_create(uint32_t alignment); /* 0: 32 */
void bn_gguf_writer_destroy(bn_gguf_writer *w);            /* accepts NULL */

bool bn_gguf_writer_add_u32(bn_gguf_writer *w, const char *key, uint32_t v);
bool bn_gguf_writer_add_i32(bn_gguf_writer *w, const char *key, int32_t v);
bool bn_gguf_writer_add_u64(bn_gguf_writer *w, const char *key, uint64_t v);
bool bn_gguf_writer_add_f32(bn_gguf_writer *w, const char *key, float v);
bool bn_gguf_writer_add_bool(bn_gguf_writer *w, const char *key, bool v);
bool bn_gguf_writer_add_str(bn_gguf_writer *w, const char *key, const char *v);
/* Array of scalars: elem_type is a scalar enum bn_gguf_type, data holds n
 * packed little-endian elements. */
bool bn_gguf_writer_add_arr(bn_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n);
/* Array of NUL-terminated strings. */
bool bn_gguf_writer_add_arr_str(bn_gguf_writer *w, const char *key, const char *const *v, uint64_t n);

/* Tensor: type is an enum bn_type; ne[0] fastest; nbytes must equal the size
 * the type implies (checked, returns false otherwise). Data is copied. */
bool bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data, uint64_t nbytes);

/* Serialises the whole file into a malloc'd buffer (caller frees). */
enum bn_status bn_gguf_writer_to_memory(const bn_gguf_writer *w, uint8_t **out, size_t *size, char *err, size_t errlen);

/* Writes path atomically (path.tmp then rename); no partial file on failure. */
enum bn_status bn_gguf_writer_write_file(const bn_gguf_writer *w, const char *path, char *err, size_t errlen);

#endif
