"""The quantization lab: build quants of a model (`quantize`) and measure them side by
side (`compare`), the way model cards compare them: size, bits per weight, perplexity,
speed and memory.

The work itself is mlx-lm's (its quantizer, mixed-precision predicates and perplexity
evaluation); this package decides which layer gets which precision, checks the input,
shows progress and reports. Nothing here is imported by `edge-agent --help`.
"""
