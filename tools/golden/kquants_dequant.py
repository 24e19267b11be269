#!/usr/bin/env python3
"""Golden dequantization data for Kaiyuan's K-quant formats, made with the `gguf` package.

For each of Q2_K, Q3_K, Q4_K, Q5_K, Q6_K it builds a few super-blocks of random bytes,
sets their f16 `d` / `dmin` fields to chosen values (realistic ones plus extremes:
65504, the smallest subnormal, 0 and negatives), dequantizes them with
`gguf.quants.dequantize` and writes one JSON object per line inside a JSON array:

    {"type": "Q4_K", "hex": "<block bytes>", "values": [<256 f32 as decimal>]}

The layout (one case per line) keeps the Rust-side parser trivial. Values are float32
printed with Python's shortest round-trip repr, so parsing them as f64 and narrowing to
f32 gives back the exact float32.

Usage: python3 tools/golden/kquants_dequant.py > testdata/golden/kquants_dequant.json
"""

import json
import sys

import numpy as np
from gguf.constants import GGMLQuantizationType as T
from gguf.quants import dequantize

# Byte offsets of the f16 fields inside each super-block (from the GGML block layouts):
#   Q2_K: scales[16] qs[64] d dmin        Q3_K: hmask[32] qs[64] scales[12] d
#   Q4_K: d dmin scales[12] qs[128]       Q5_K: d dmin scales[12] qh[32] qs[128]
#   Q6_K: ql[128] qh[64] scales[16] d
FORMATS = {
    "Q2_K": (T.Q2_K, 84, 80, 82),
    "Q3_K": (T.Q3_K, 110, 108, None),
    "Q4_K": (T.Q4_K, 144, 0, 2),
    "Q5_K": (T.Q5_K, 176, 0, 2),
    "Q6_K": (T.Q6_K, 210, 208, None),
}

# (d, dmin) per block; the first entries are realistic, then the extremes.
SMALLEST_SUBNORMAL = float(np.frombuffer(np.uint16(1).tobytes(), dtype=np.float16)[0])
SCALES = [
    (0.0123, 0.0045),
    (0.0371, 0.0009),
    (65504.0, -65504.0),
    (SMALLEST_SUBNORMAL, SMALLEST_SUBNORMAL),
    (0.0, 0.0),
    (-0.021, -0.0077),
]


def f16_bytes(x: float) -> bytes:
    return np.float16(x).tobytes()


def main() -> None:
    rng = np.random.default_rng(20261128)
    lines = []
    for name, (qtype, size, d_off, dmin_off) in FORMATS.items():
        for d, dmin in SCALES:
            block = bytearray(rng.integers(0, 256, size=size, dtype=np.uint8).tobytes())
            block[d_off:d_off + 2] = f16_bytes(d)
            if dmin_off is not None:
                block[dmin_off:dmin_off + 2] = f16_bytes(dmin)
            values = dequantize(np.frombuffer(bytes(block), dtype=np.uint8), qtype)
            values = np.asarray(values, dtype=np.float32).reshape(-1)
            assert values.shape == (256,) and np.all(np.isfinite(values))
            case = {
                "type": name,
                "hex": bytes(block).hex(),
                "values": [float(v) for v in values],
            }
            lines.append(json.dumps(case, separators=(",", ":")))
    sys.stdout.write("[\n" + ",\n".join(lines) + "\n]\n")


if __name__ == "__main__":
    main()
