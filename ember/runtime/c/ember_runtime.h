/* ember runtime ABI: what a compiled model library exports.
 *
 * An artifact (.ember) is a tar file holding:
 *   model.so       the model: kernels + the AOT entry point below
 *   params.bin     the weights, each at a 64-byte aligned offset
 *   metadata.json  names, shapes, dtypes, target, ember version, checksums
 *
 * A host program loads model.so, reads params.bin into 64-byte aligned memory,
 * allocates ember_workspace_bytes() of 64-byte aligned scratch, and calls
 * ember_run() once per inference. Nothing in the library allocates or spawns
 * threads except the kernels' OpenMP parallel loops.
 */
#ifndef EMBER_RUNTIME_H_
#define EMBER_RUNTIME_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_ABI_VERSION 1
#define EMBER_MAX_NDIM 8

/* Element types, as stored in ember_tensor_info.dtype. */
enum {
  EMBER_FLOAT32 = 0,
  EMBER_FLOAT16 = 1,
  EMBER_FLOAT64 = 2,
  EMBER_INT8 = 3,
  EMBER_UINT8 = 4,
  EMBER_INT16 = 5,
  EMBER_INT32 = 6,
  EMBER_INT64 = 7,
  EMBER_UINT32 = 8,
  EMBER_BOOL = 9,
  EMBER_UINT16 = 10,
  EMBER_UINT64 = 11,
  EMBER_BFLOAT16 = 12 /* the upper 16 bits of a float32 (numpy: ml_dtypes.bfloat16) */
};

typedef struct {
  const char* name;
  int32_t ndim;
  int64_t shape[EMBER_MAX_NDIM];
  int32_t dtype;
  uint64_t nbytes;
  uint64_t offset; /* params only: byte offset in params.bin */
} ember_tensor_info;

int32_t ember_abi_version(void);
int32_t ember_num_inputs(void);
int32_t ember_num_outputs(void);
int32_t ember_num_params(void);
const ember_tensor_info* ember_input_info(int32_t i);
const ember_tensor_info* ember_output_info(int32_t i);
const ember_tensor_info* ember_param_info(int32_t i);
uint64_t ember_workspace_bytes(void);

/* Run one inference. inputs/outputs/params: one pointer per tensor, in the
 * order of the *_info tables; workspace: ember_workspace_bytes() bytes.
 * Returns 0 on success, otherwise the 1-based index of the kernel that failed. */
int32_t ember_run(void* const* inputs, void* const* outputs, void* const* params, void* workspace);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_RUNTIME_H_ */
