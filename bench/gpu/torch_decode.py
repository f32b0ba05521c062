"""PyTorch + transformers decode speed on the GPU, for bench/gpu/check.sh: a randomly
initialised Qwen3 model of the qwen3-0.6b shape in BF16, greedy generate, batch 1. Prints one
JSON object: decode tokens/s (the time of N+1 new tokens minus that of 1, so the prompt is
not counted), or {"skipped": why} when torch, transformers or a GPU is missing."""
import json
import sys
import time


def main():
    try:
        import torch
        import transformers
        from transformers import Qwen3Config, Qwen3ForCausalLM
    except Exception as e:  # any import problem means: no comparison on this machine
        print(json.dumps({"skipped": f"torch/transformers with Qwen3 not importable: {e}"}))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "torch sees no GPU"}))
        return 0
    new_tokens = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    cfg = Qwen3Config(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                      num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                      head_dim=128, max_position_embeddings=40960, rope_theta=1e6,
                      rms_norm_eps=1e-6, tie_word_embeddings=True)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16).eval()
    ids = torch.randint(0, cfg.vocab_size, (1, 16), device="cuda")

    def timed(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 min_new_tokens=n, max_new_tokens=n, pad_token_id=0)
        torch.cuda.synchronize()
        assert out.shape[1] == ids.shape[1] + n, out.shape
        return time.perf_counter() - t

    timed(8)  # warm-up: kernels, allocator
    first = min(timed(1) for _ in range(2))
    full = min(timed(new_tokens + 1) for _ in range(2))
    print(json.dumps({
        "decode_tps": new_tokens / (full - first), "new_tokens": new_tokens, "prompt_tokens": 16,
        "batch": 1, "dtype": "bfloat16", "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attention": getattr(model.config, "_attn_implementation", None),
        "gpu": torch.cuda.get_device_name(0)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
