/*===- tessel.h - the C API of the tessel runtime -------------------------===*
 *
 * Load a compiled model (.tsl, docs/artifact.md) and run it, from C or any language with a C
 * FFI. Link libtessel_runtime.so (-ltessel_runtime); no LLVM, no protobuf.
 *
 *   tessel_model *m;
 *   if (tessel_load("model.tsl", &m) != 0) { fprintf(stderr, "%s\n", tessel_last_error()); ... }
 *   int64_t shape[2] = {1, 784};
 *   tessel_tensor in = {"input", TESSEL_F32, 2, shape, data, sizeof(float) * 784};
 *   tessel_tensor out = {"logits", TESSEL_F32, 2, out_shape, out_data, sizeof(float) * 10};
 *   if (tessel_run(m, &in, 1, &out, 1) != 0) { ... tessel_last_error() ... }
 *   tessel_free(m);
 *
 * Errors never abort: every function that can fail returns 0 on success and -1 on failure and
 * sets this thread's last error (tessel_last_error), which names what was wrong (the file and
 * byte offset, the section, the tensor, the missing CPU feature or kernel symbol) and what was
 * expected. A loaded model is immutable: tessel_run may be called on the same model from many
 * threads at once (each run uses its own scratch arena from the model's pool) and gives the
 * same bits as a single-threaded run. tessel_free must not race with a run of the same model.
 *
 *===----------------------------------------------------------------------===*/
#ifndef TESSEL_RUNTIME_TESSEL_H
#define TESSEL_RUNTIME_TESSEL_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define TESSEL_C_EXPORT
#else
#define TESSEL_C_EXPORT __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Element types (the numbering of the artifact format and of tessel::DType). */
enum {
  TESSEL_F32 = 1,
  TESSEL_F16 = 2,
  TESSEL_BF16 = 3,
  TESSEL_F64 = 4,
  TESSEL_I8 = 5,
  TESSEL_U8 = 6,
  TESSEL_I16 = 7,
  TESSEL_U16 = 8,
  TESSEL_I32 = 9,
  TESSEL_U32 = 10,
  TESSEL_I64 = 11,
  TESSEL_U64 = 12,
  TESSEL_BOOL = 13
};

typedef struct tessel_model tessel_model;

/* A tensor: a buffer bound to a model input or output by name, or (from tessel_input_info /
 * tessel_output_info) the description of one, with data NULL. */
typedef struct tessel_tensor {
  const char *name;
  int32_t dtype;        /* TESSEL_F32, ... */
  int32_t rank;         /* number of dims; 0 for a scalar */
  const int64_t *shape; /* rank dims */
  void *data;           /* inputs are only read; outputs are written */
  uint64_t size_bytes;  /* must equal the element count times the element size */
} tessel_tensor;

/* Reads, checks and loads the artifact at path; *out receives the model (NULL on failure). */
TESSEL_C_EXPORT int tessel_load(const char *path, tessel_model **out);
/* The same for an artifact held in memory (copied: the caller may free data afterwards). */
TESSEL_C_EXPORT int tessel_load_from_memory(const void *data, size_t size, tessel_model **out);
/* Frees a model (NULL is ignored). */
TESSEL_C_EXPORT void tessel_free(tessel_model *model);

/* Runs the model: every input and every output given exactly once, by name, in any order,
 * with the dtype, shape and byte size the model declares. Outputs are written into the
 * caller's buffers, which must not overlap each other or an input. */
TESSEL_C_EXPORT int tessel_run(const tessel_model *model, const tessel_tensor *inputs,
                               size_t num_inputs, const tessel_tensor *outputs,
                               size_t num_outputs);

/* tessel_run that also reports each output's actual shape: output_shapes[i] points to room for
 * outputs[i].rank dims and receives the shape the run produced. Required for a model with an
 * output whose shape depends on the data (tessel_output_dynamic_axis >= 0; tessel_run rejects
 * such a model): its buffer is given with the bound's shape and size (tessel_output_info), and
 * the run writes the actual elements at its start, row-major. */
TESSEL_C_EXPORT int tessel_run_dynamic(const tessel_model *model, const tessel_tensor *inputs,
                                       size_t num_inputs, const tessel_tensor *outputs,
                                       size_t num_outputs, int64_t *const *output_shapes);
/* The dim of output `index` whose extent depends on the data (NonZero, Unique, Compress,
 * NonMaxSuppression; tessel_output_info gives its upper bound), or -1 for an output of fixed
 * shape (and for a NULL model or an index out of range). */
TESSEL_C_EXPORT int64_t tessel_output_dynamic_axis(const tessel_model *model, size_t index);

/* This thread's last error message from the functions above ("" when none). Valid until the
 * next call of a tessel_ function on this thread. */
TESSEL_C_EXPORT const char *tessel_last_error(void);

/* Introspection. The strings and shapes point into the model and live as long as it. */
TESSEL_C_EXPORT size_t tessel_num_inputs(const tessel_model *model);
TESSEL_C_EXPORT size_t tessel_num_outputs(const tessel_model *model);
/* Fills *info (data = NULL, size_bytes = the byte size). -1 for an index out of range. */
TESSEL_C_EXPORT int tessel_input_info(const tessel_model *model, size_t index,
                                      tessel_tensor *info);
TESSEL_C_EXPORT int tessel_output_info(const tessel_model *model, size_t index,
                                       tessel_tensor *info);
/* A metadata value as text: "target_triple", "cpu_name", "cpu_features", "tessel_version",
 * "source_hash", "fallback_nodes", "buffer_alignment", "arena_size", "num_steps", or an extra
 * key the compiler recorded; NULL when the model has no such key. */
TESSEL_C_EXPORT const char *tessel_model_info(const tessel_model *model, const char *key);
/* "f32", "i64", ...; "invalid" for an unknown code. */
TESSEL_C_EXPORT const char *tessel_dtype_name(int32_t dtype);

#ifdef __cplusplus
}
#endif

#endif /* TESSEL_RUNTIME_TESSEL_H */
