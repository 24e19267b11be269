#!/usr/bin/env python3
"""Writes the dequantization golden files under testdata/golden/dequant/.

The reference is the `gguf` Python package alone: `gguf.GGUFReader` reads the model files
and `gguf.quants.dequantize` (its numpy implementation of every GGML format) computes the
expected values. Nothing here calls or imports Kaiyuan's Rust code, so the goldens are an
independent check of it (crates/kernels/tests/dequant_golden.rs).

Outputs (one JSON file per source):
  smollm2.json    blocks of real tensors of SmolLM2-135M-Instruct.Q4_1.gguf, every tensor type
  gemma3.json     blocks of real tensors of gemma-3-270m-q4_k_m.gguf, every tensor type
  synthetic.json  seeded random blocks of every format Kaiyuan reads, with ordinary and
                  extreme f16 scales (+-65504, +-2^-24, +-0, +-inf) and fully random bytes

Entry encoding: "bytes" is the raw block bytes as in the GGUF file (lowercase hex);
"f32_bits" holds the expected values as space-separated 8-digit hex IEEE-754 f32 bit
patterns (u32, most significant digit first), so they are stored exactly, NaN payloads
included. Entries hold whole blocks; float types (block size 1) hold runs of 32 elements.

Usage: .venv/bin/python tools/dequant_golden.py [--smollm2 PATH] [--gemma3 PATH] [--out DIR]
The output is deterministic: the same inputs and package versions give identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from importlib.metadata import version

import numpy as np
from gguf import GGUFReader
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = 0x4B41_4959  # "KAIY"
FLOAT_RUN = 32  # elements per entry for F32/F16/BF16
TENSORS_PER_TYPE = 3  # first, last and one seeded-random tensor of each type
UNITS_PER_TYPE = 12  # blocks (float runs) per type, spread over its picked tensors

# Names and byte offsets of the f16 scale fields in each block (ggml-common.h block
# structs, as unpacked by gguf/quants.py); `check_scale_offsets` verifies them against the
# package. Comments give the whole layout.
SCALE_FIELDS: dict[str, dict[str, int]] = {
    "Q4_0": {"d": 0},  # d, qs[16]
    "Q4_1": {"d": 0, "m": 2},  # d, m, qs[16]
    "Q5_0": {"d": 0},  # d, qh[4], qs[16]
    "Q5_1": {"d": 0, "m": 2},  # d, m, qh[4], qs[16]
    "Q8_0": {"d": 0},  # d, qs[32] (i8)
    "Q2_K": {"d": 80, "dmin": 82},  # scales[16], qs[64], d, dmin
    "Q3_K": {"d": 108},  # hmask[32], qs[64], scales[12], d
    "Q4_K": {"d": 0, "dmin": 2},  # d, dmin, scales[12], qs[128]
    "Q5_K": {"d": 0, "dmin": 2},  # d, dmin, scales[12], qh[32], qs[128]
    "Q6_K": {"d": 208},  # ql[128], qh[64], scales[16] (i8), d
}
FLOAT_FORMATS = ("F32", "F16", "BF16")
BLOCK_FORMATS = tuple(SCALE_FIELDS)

F16_MAX = 0x7BFF  # 65504
F16_MIN_SUBNORMAL = 0x0001  # 2^-24
F16_INF = 0x7C00


def qtype(name: str) -> GGMLQuantizationType:
    return GGMLQuantizationType[name]


def sizes(name: str) -> tuple[int, int]:
    """(elements per block, bytes per block) as the gguf package defines them."""
    block_size, type_size = GGML_QUANT_SIZES[qtype(name)]
    return int(block_size), int(type_size)


def reference(name: str, raw: np.ndarray) -> np.ndarray:
    """The gguf package's dequantization of whole blocks (raw: 1-D uint8)."""
    assert raw.dtype == np.uint8 and raw.ndim == 1
    with np.errstate(all="ignore"):  # inf/NaN scales are intended in some synthetic cases
        out = dequantize(raw, qtype(name))
    out = np.asarray(out, dtype=np.float32).reshape(-1)
    block_size, type_size = sizes(name)
    assert out.size == raw.size // type_size * block_size, (name, raw.size, out.size)
    return out


def encode_f32(values: np.ndarray) -> str:
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return " ".join(f"{int(b):08x}" for b in bits)


def entry(name: str, raw: np.ndarray, expected: np.ndarray, **about) -> dict:
    return {**about, "type": name, "bytes": raw.tobytes().hex(), "f32_bits": encode_f32(expected)}


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shown_path(path: str) -> str:
    absolute = os.path.abspath(path)
    return os.path.relpath(absolute, REPO) if absolute.startswith(REPO + os.sep) else path


def header(what: str, sources: dict | None = None) -> dict:
    return {
        "what": what,
        "generator": "tools/dequant_golden.py",
        "command": " ".join(["tools/dequant_golden.py", *(shown_path(a) for a in sys.argv[1:])]),
        "gguf_version": version("gguf"),
        "numpy_version": np.__version__,
        "seed": SEED,
        "encoding": "bytes: raw block bytes, hex; f32_bits: expected values as space-separated "
        "8-hex-digit IEEE-754 f32 bit patterns (exact, NaN payloads kept)",
        **(sources or {}),
    }


# ---------------------------------------------------------------- real tensors


def tensor_bytes(tensor) -> np.ndarray:
    """The tensor's raw bytes exactly as stored in the file (1-D uint8)."""
    return np.ascontiguousarray(tensor.data).view(np.uint8).reshape(-1)


def real_entries(path: str, rng: np.random.Generator) -> tuple[list[str], list[dict]]:
    reader = GGUFReader(path)
    by_type: dict[str, list] = {}
    for t in reader.tensors:
        by_type.setdefault(t.tensor_type.name, []).append(t)

    entries = []
    for name in sorted(by_type, key=lambda n: int(qtype(n))):
        tensors = by_type[name]
        picks = sorted({0, len(tensors) - 1, int(rng.integers(len(tensors)))})[:TENSORS_PER_TYPE]
        per_tensor = -(-UNITS_PER_TYPE // len(picks))  # first, last and seeded-random ones
        for ti in picks:
            t = tensors[ti]
            raw = tensor_bytes(t)
            block_size, type_size = sizes(name)
            n_elements = int(np.prod([int(x) for x in t.shape]))
            assert raw.size == n_elements // block_size * type_size, (t.name, raw.size)
            # Float types: one entry is a run of FLOAT_RUN elements; blocks otherwise.
            unit = FLOAT_RUN if block_size == 1 else 1
            n_units = n_elements // block_size // unit
            firsts = {0, n_units - 1}
            while len(firsts) < min(n_units, per_tensor):
                firsts.add(int(rng.integers(n_units)))

            # Expected values come from dequantizing the whole row holding the unit, then
            # slicing, so the entry also pins down where the unit sits in the tensor.
            row_elems = int(t.shape[0])  # GGUF shape: ne0 (row length) first
            row_bytes = row_elems // block_size * type_size
            whole = None
            for u in sorted(firsts):
                first_block = u * unit
                lo, hi = first_block * type_size, (first_block + unit) * type_size
                block = raw[lo:hi].copy()
                row = lo // row_bytes
                row_values = reference(name, raw[row * row_bytes : (row + 1) * row_bytes].copy())
                start = first_block * block_size - row * row_elems
                assert start + unit * block_size <= row_elems, f"{t.name}: unit crosses a row"
                expected = row_values[start : start + unit * block_size]
                alone = reference(name, block)
                assert np.array_equal(alone.view(np.uint32), expected.view(np.uint32)), t.name
                if whole is None and raw.size <= 4 << 20:
                    whole = reference(name, raw)
                if whole is not None:
                    w = whole[first_block * block_size : (first_block + unit) * block_size]
                    assert np.array_equal(w.view(np.uint32), expected.view(np.uint32)), t.name
                entries.append(
                    entry(name, block, expected, tensor=t.name, first_block=first_block, n_blocks=unit)
                )
    return sorted(by_type, key=lambda n: int(qtype(n))), entries


def real_file(path: str, rng: np.random.Generator) -> dict:
    types, entries = real_entries(path, rng)
    return {
        "header": header(
            f"Blocks of real tensors of {os.path.basename(path)}, dequantized by the gguf package",
            {
                "model_file": os.path.basename(path),
                "model_sha256": sha256(path),
                "tensor_types": types,
                "selection": f"per tensor type: the first, last and a seeded-random tensor, and "
                f"{UNITS_PER_TYPE} blocks spread over them: each tensor's first, last and "
                f"seeded-random ones (float types: runs of {FLOAT_RUN} elements)",
            },
        ),
        "entries": entries,
    }


# ----------------------------------------------------------- synthetic blocks


def f16_bits(x: float) -> int:
    return int(np.array([x], dtype=np.float16).view(np.uint16)[0])


def set_f16(block: np.ndarray, offset: int, bits: int) -> None:
    block[offset] = bits & 0xFF
    block[offset + 1] = bits >> 8


def ordinary_f16(rng: np.random.Generator) -> int:
    """A normal f16 of either sign with magnitude in [2^-10, 2]."""
    magnitude = 2.0 ** rng.uniform(-10, 1)
    return f16_bits(magnitude if rng.integers(2) else -magnitude)


# Synthetic cases for block formats: (fill, scale fields). `fill` sets the bytes other
# than the f16 scale fields ("random", 0x00 or 0xff); each scale field is given as f16
# bits, or None for an ordinary random value. Formats with one scale field use the first
# of each pair and skip the cases that only vary the second.
NEG = 0x8000  # f16 sign bit
SCALE_CASES: list[tuple[str | int, tuple[int | None, int | None]]] = [
    ("random", (None, None)),
    ("random", (None, None)),
    ("random", (F16_MAX, F16_MAX | NEG)),
    ("random", (F16_MAX | NEG, F16_MAX)),
    ("random", (F16_MIN_SUBNORMAL, F16_MIN_SUBNORMAL | NEG)),
    ("random", (F16_MIN_SUBNORMAL | NEG, None)),
    ("random", (0, NEG)),
    ("random", (NEG, None)),
    ("random", (None, 0)),
    ("random", (F16_INF, None)),
    (0xFF, (F16_MAX | NEG, F16_MAX)),
    (0x00, (F16_MAX, F16_MAX | NEG)),
]
F16_NAMES = {F16_MAX: "65504", F16_MIN_SUBNORMAL: "2^-24", 0: "0", F16_INF: "inf"}


def describe_f16(bits: int | None) -> str:
    if bits is None:
        return "ordinary"
    return ("-" if bits & NEG else "+") + F16_NAMES[bits & ~NEG]


def synthetic_block(name: str, rng: np.random.Generator) -> list[dict]:
    _, type_size = sizes(name)
    fields = SCALE_FIELDS[name]
    out = []
    for fill, pair in SCALE_CASES:
        if len(fields) == 1 and pair[0] is None and pair[1] is not None:
            continue  # only varies a second field this format does not have
        values = pair[: len(fields)]
        if fill == "random":
            block = rng.integers(0, 256, size=type_size, dtype=np.uint8)
        else:
            block = np.full(type_size, fill, dtype=np.uint8)
        for off, bits in zip(fields.values(), values):
            set_f16(block, off, ordinary_f16(rng) if bits is None else bits)
        label = ", ".join(f"{f}={describe_f16(v)}" for f, v in zip(fields, values))
        label += "; other bytes random" if fill == "random" else f"; other bytes 0x{fill:02x}"
        out.append(entry(name, block, reference(name, block), case=label))
    for _ in range(3):
        block = rng.integers(0, 256, size=type_size, dtype=np.uint8)
        out.append(entry(name, block, reference(name, block), case="fully random bytes"))
    return out


# Float formats: (bytes per value, sign bit, largest subnormal bit pattern, special bit
# patterns: +-0, smallest and largest subnormals, smallest normals, +-max, +-inf, quiet
# and signalling NaNs, 1, -1, 1/3, and one value near the other format's range).
FLOAT_LAYOUTS: dict[str, tuple[int, int, int, list[int]]] = {
    "F32": (4, 1 << 31, 0x007FFFFF, [
        0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000,
        0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
        0x7F800001, 0x7FFFFFFF, 0x3F800000, 0xBF800000, 0x3EAAAAAB, 0x477FE000]),
    "F16": (2, 1 << 15, 0x03FF, [
        0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400, 0x7BFF, 0xFBFF,
        0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7FFF, 0x3C00, 0xBC00, 0x3555, 0x0200]),
    "BF16": (2, 1 << 15, 0x007F, [
        0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x807F, 0x0080, 0x8080, 0x7F7F, 0xFF7F,
        0x7F80, 0xFF80, 0x7FC0, 0xFFC0, 0x7F81, 0x7FFF, 0x3F80, 0xBF80, 0x3EAB, 0x0040]),
}


def ordinary_floats(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Bit patterns of n normal-range values (about N(0, 3)) in format `name`."""
    values = rng.normal(0, 3, n).astype(np.float32)
    if name == "F16":
        return values.astype(np.float16).view(np.uint16)
    if name == "BF16":
        return (values.view(np.uint32) >> 16).astype(np.uint16)  # truncation is fine here
    return values.view(np.uint32)


def synthetic_floats(name: str, rng: np.random.Generator) -> list[dict]:
    width, sign, max_subnormal, special = FLOAT_LAYOUTS[name]
    utype = np.uint32 if width == 4 else np.uint16

    def subnormals(n: int) -> np.ndarray:
        mantissa = rng.integers(1, max_subnormal + 1, n, dtype=np.uint64)
        return (mantissa | rng.integers(0, 2, n, dtype=np.uint64) * sign).astype(utype)

    def run(label: str, bits) -> dict:
        v = np.asarray(bits, dtype=np.uint64).astype(utype)
        assert v.size == FLOAT_RUN
        raw = v.astype(f"<u{width}").view(np.uint8)
        return entry(name, raw, reference(name, raw), case=label)

    fill = FLOAT_RUN - len(special)
    out = [
        run("ordinary values", ordinary_floats(name, FLOAT_RUN, rng)),
        run("ordinary values", ordinary_floats(name, FLOAT_RUN, rng)),
        run("zeros, subnormals, extremes, infinities, NaNs, then ordinary values",
            [*special, *ordinary_floats(name, fill, rng)]),
        run("subnormals", subnormals(FLOAT_RUN)),
        run("special values and subnormals, shuffled", rng.permutation([*special, *subnormals(fill)])),
    ]
    for _ in range(4):
        out.append(run("fully random bits", rng.integers(0, 1 << (8 * width), FLOAT_RUN, dtype=np.uint64)))
    return out


def check_scale_offsets(rng: np.random.Generator) -> None:
    """Self-check of SCALE_FIELDS against the package: zero scale fields must zero every
    output, and non-zero ones must leave some output non-zero, for random quant bytes."""
    for name, fields in SCALE_FIELDS.items():
        offsets = tuple(fields.values())
        _, type_size = sizes(name)
        for _ in range(8):
            block = rng.integers(0, 256, size=type_size, dtype=np.uint8)
            for off in offsets:
                set_f16(block, off, 0)
            assert not reference(name, block).any(), f"{name}: scale offsets {offsets} are wrong"
            for off in offsets:
                set_f16(block, off, f16_bits(1.0))
            assert reference(name, block).any(), f"{name}: all-zero output with unit scales"


def synthetic_file(rng: np.random.Generator) -> dict:
    check_scale_offsets(rng)
    entries = []
    for name in FLOAT_FORMATS:
        entries += synthetic_floats(name, rng)
    for name in BLOCK_FORMATS:
        entries += synthetic_block(name, rng)
    return {
        "header": header(
            "Seeded synthetic blocks of every format, dequantized by the gguf package",
            {
                "formats": list(FLOAT_FORMATS + BLOCK_FORMATS),
                "scale_field_offsets": SCALE_FIELDS,
                "nan_policy": "blocks whose values are NaN are kept; the test compares NaN-aware "
                "(any NaN matches any NaN, all other values bit for bit)",
            },
        ),
        "entries": entries,
    }


# ------------------------------------------------------------------------ main


def write(path: str, doc: dict) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    n = len(doc["entries"])
    print(f"{shown_path(path)}: {n} entries, {os.path.getsize(path)} bytes", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smollm2", default=os.path.join(REPO, "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    p.add_argument("--gemma3", default=os.path.join(REPO, "models/gemma-3-270m-q4_k_m.gguf"))
    p.add_argument("--out", default=os.path.join(REPO, "testdata/golden/dequant"))
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)

    write(os.path.join(args.out, "synthetic.json"), synthetic_file(np.random.default_rng(SEED)))
    write(os.path.join(args.out, "smollm2.json"), real_file(args.smollm2, np.random.default_rng(SEED + 1)))
    write(os.path.join(args.out, "gemma3.json"), real_file(args.gemma3, np.random.default_rng(SEED + 2)))


if __name__ == "__main__":
    main()
