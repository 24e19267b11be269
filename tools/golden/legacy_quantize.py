#!/usr/bin/env python3
"""Writes testdata/golden/legacy_quantize.json: reference results from the `gguf` Python
package (gguf.quants, GGML's numpy reference) for Kaiyuan's legacy-format kernels.

Cases:
  * quantize Q8_0 and Q4_0: f32 input row -> GGUF block bytes
  * dequantize Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: block bytes (random quants, finite scales,
    including extreme ones) -> f32 row

All numbers travel as lowercase hex of little-endian bytes (f32 rows as raw f32 bits), so
the Rust test needs no float parsing. Deterministic: fixed numpy seed.

Usage: python3 tools/golden/legacy_quantize.py   (from the repository root)
"""

import importlib.metadata
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

OUT = pathlib.Path(__file__).resolve().parents[2] / "testdata" / "golden" / "legacy_quantize.json"
QK = 32


def quantize_inputs(rng: np.random.Generator) -> np.ndarray:
    blocks = [
        rng.standard_normal(QK),
        rng.standard_normal(QK) * 1e-3,
        rng.standard_normal(QK) * 300.0,
        rng.uniform(-1.0, 1.0, QK),
        np.zeros(QK),
        np.full(QK, 0.25),
        np.full(QK, -3.0),
        # ties in magnitude: the first one decides the sign of Q4_0's d
        np.concatenate([[2.0, -2.0], rng.uniform(-1, 1, QK - 2)]),
        np.concatenate([[-2.0, 2.0], rng.uniform(-1, 1, QK - 2)]),
        # exact halves after scaling (amax 127 -> d = 1)
        np.concatenate([[127.0], np.arange(QK - 1) - 15.5]),
        # exact grid points for Q4_0 (max -8 -> d = 1)
        np.concatenate([[-8.0], np.arange(QK - 1) % 16 - 8 + 0.5]),
        rng.standard_normal(QK) * np.exp(rng.uniform(-8, 8, QK)),
    ]
    for _ in range(20):
        blocks.append(rng.standard_normal(QK) * 10.0 ** rng.uniform(-4, 3))
    return np.concatenate(blocks).astype(np.float32)


def random_blocks(rng: np.random.Generator, qtype: T, n: int) -> np.ndarray:
    _, size = quants.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    n_scales = 2 if qtype in (T.Q4_1, T.Q5_1) else 1
    specials = [65504.0, -65504.0, 2.0**-24, -(2.0**-24), 0.0, 6.1e-5, -1.0]
    for i in range(n):
        for k in range(n_scales):
            if i < len(specials) and k == 0:
                v = specials[i]
            else:
                v = rng.choice([-1, 1]) * rng.uniform(1e-4, 0.1)
            raw[i, 2 * k : 2 * k + 2] = np.array([v], dtype=np.float16).view(np.uint8)
    return raw


def hexf32(a: np.ndarray) -> str:
    return np.asarray(a, dtype="<f4").tobytes().hex()


def main() -> None:
    rng = np.random.default_rng(20261128)
    cases = []
    x = quantize_inputs(rng)
    for name, qtype in [("Q8_0", T.Q8_0), ("Q4_0", T.Q4_0)]:
        q = quants.quantize(x, qtype)
        cases.append({"op": "quantize", "type": name, "input": hexf32(x), "output": q.tobytes().hex()})
    for name, qtype in [("Q4_0", T.Q4_0), ("Q4_1", T.Q4_1), ("Q5_0", T.Q5_0), ("Q5_1", T.Q5_1), ("Q8_0", T.Q8_0)]:
        raw = random_blocks(rng, qtype, 12)
        deq = quants.dequantize(raw.reshape(-1), qtype)
        cases.append({"op": "dequantize", "type": name, "input": raw.tobytes().hex(), "output": hexf32(deq)})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generator": "tools/golden/legacy_quantize.py",
        "reference": "gguf Python package (gguf.quants) " + importlib.metadata.version("gguf"),
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
