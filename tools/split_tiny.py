"""Writes gguf-split shards of two tiny test models into testdata/tiny/split/, with gguf-py's
own split writer (`GGUFWriter(split_max_tensors=...)`, the one llama.cpp's
convert_hf_to_gguf.py --split-max-tensors uses; same keys and file names as
llama-gguf-split: split.no, split.count, split.tensors.count, NAME-0000k-of-0000N.gguf).
The reference is independent of Kaiyuan's GGUF code; crates/model/tests/split.rs checks that
a split model gives the same logits as the whole file.

Run from the repository root with a Python that has `gguf` (tools/setup-venv):
    python tools/split_tiny.py
"""

import math
import pathlib

import gguf

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ROOT / "testdata" / "tiny"
OUT = TINY / "split"


def split(source, name, shards):
    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    per_shard = math.ceil(len(reader.tensors) / shards)
    writer = gguf.GGUFWriter(OUT / f"{name}.gguf", arch, split_max_tensors=per_shard)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    for t in reader.tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in reader.tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    split(TINY / "gemma3.q8_0.gguf", "gemma3.q8_0", 3)
    split(TINY / "llama.q8_0.gguf", "llama.q8_0", 3)
    for p in sorted(OUT.glob("*.gguf")):
        print(p.relative_to(ROOT), p.stat().st_size)
