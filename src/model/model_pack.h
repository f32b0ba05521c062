/* A model's matrices packed for the CPU's AVX-512 kernels (tensor/repack.h), which run batches
 * and prompts about twice as fast on them as on GGUF's row-by-row layout.
 *
 * This is the one place weights are copied out of the mmapped file (see docs/ARCHITECTURE.md,
 * "Packed weights", for why): into memory of the process's own, on huge pages. Each piece of
 * the file is dropped from the process's resident memory as soon as it is packed, so the peak
 * resident size stays about the file's size, and the file's pages stay in the page cache for
 * the next start. */
#ifndef VEIL_MODEL_PACK_H
#define VEIL_MODEL_PACK_H

#include "model/model.h"

/* Sets *out to a model that shares m's file, hyperparameters and vectors and has its Q4_0,
 * Q8_0, Q4_K, Q6_K, F16 and BF16 matrices (the layers' and the output's; not the embeddings,
 * which are looked up by row) packed, on n_threads threads (<= 0: one per CPU), or to NULL when there is
 * nothing to pack: the matrix kernels are not AVX-512, the environment has VEIL_REPACK=0, or
 * no matrix has a packed form. m must outlive *out; free it with model_free. Returns 0, or -1
 * with err_msg() set (out of memory). */
int model_pack(const model *m, int n_threads, model **out);

#endif
