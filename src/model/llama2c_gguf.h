/* llama2.c checkpoint + tokenizer.bin -> GGUF, laid out as llama.cpp's own
 * convert-llama2c-to-ggml lays it out, so that every tensor is bit-identical to what that tool
 * writes (the weights are copied unchanged: llama2.c stores wq/wk in Meta's layout, which is
 * what llama.cpp's "llama" architecture expects, so no RoPE permutation is applied).
 *
 * Metadata matches llama.cpp's converter key for key except on purpose:
 *  - general.name is the caller's name, not the constant "llama";
 *  - llama.context_length is the checkpoint's seq_len (llama.cpp writes its fixed default 128);
 *  - output.weight is written only for a separate classifier; a shared one is left out and
 *    readers use token_embd.weight (llama.cpp writes a duplicate of the embedding);
 *  - tokenizer.ggml.seperator_token_id and padding_token_id are left out (llama.cpp writes
 *    0xFFFFFFFF, i.e. "none").
 * Token texts follow SentencePiece as llama.cpp stores it: ' ' becomes U+2581 ("▁"), ids 0/1/2
 * become "<unk>", "<s>", "</s>" (llama2.c's export prints them as "\n<s>\n" and "\n</s>\n"),
 * with types unknown/control/control; "<0xHH>" pieces are byte tokens, empty pieces control,
 * the rest normal. Output depends only on the inputs and name: converting twice gives
 * byte-identical files. */
#ifndef VEIL_LLAMA2C_GGUF_H
#define VEIL_LLAMA2C_GGUF_H

#include "model/gguf.h"
#include "model/llama2c.h"

/* Adds m's and v's metadata and tensors to w, with general.name = name. Tensor data points
 * into m's mapping: keep m open until w has been written. v must hold m's vocab_size tokens.
 * 0, or -1 with err_msg(). */
int llama2c_gguf_fill(gguf_writer *w, const llama2c_model *m, const llama2c_vocab *v,
                      const char *name);

#endif
