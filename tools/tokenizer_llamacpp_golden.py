#!/usr/bin/env python3
"""Writes testdata/golden/tokenizer/{smollm2,gemma3}.llamacpp.json: the token ids llama.cpp's own
tokenizer (the issue's reference, through the `llama-cpp-python` package) gives for every string
of the tokenizer corpus, for both test models.

The corpus is read from the existing goldens (smollm2.json / gemma3.json, made by
tools/tokenizer_golden.py), so both references cover the very same strings, followed by a few
probe strings (PROBES below). For each string it
records `ids` (`tokenize(text, add_bos=False, special=False)`: control tokens not recognised) and,
only where it differs from `ids`, `ids_special` (`special=True`: control tokens recognised). A few
strings are also tokenized with `add_bos=True` (`bos` section) to record how llama.cpp applies
the model's BOS flag. Detokenization (`llama_detokenize(ids, remove_special=False, unparse_special=...)`: control
tokens hidden or rendered) is recorded where it does not give the text back: `decoded` (of `ids`),
`decoded_special_hidden` / `decoded_special_rendered` (of `ids_special`). The model is loaded with `vocab_only=True`; nothing of Kaiyuan is imported.

Usage (needs the reference build, see tools/setup-llamacpp, and models/, see scripts/fetch-models):

    tools/setup-llamacpp
    .venv/bin/python tools/tokenizer_llamacpp_golden.py

Deterministic: rerunning with the same llama-cpp-python build and models reproduces the files
byte for byte.
"""

import ctypes
import json
import pathlib
import sys

import llama_cpp

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "testdata" / "golden" / "tokenizer"
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
# Appended to the corpus: where llama.cpp's rules are easy to get wrong (unknown/pad/mask tokens
# in text, which are control-like; literal U+2581 next to Gemma's space-run tokens; byte-token
# look-alikes; NUL, BOM, CR LF, long space and tab runs, no-break spaces).
PROBES = [
    "<unk>", "<pad>", "<mask>", "[multimodal]", "<0x41>", "<0x41", "\u2581", "\u2581\u2581",
    "\u2581 ", "  \u2581", " \u2581 \u2581  \u2581", "\u2581hello", "<eos><bos>",
    "<|endoftext|>", "<|im_end|>x", "<start_of_image>", "<end_of_turn>\n", "\x00", "a\x00b",
    "\ufeffhi", "\r\n\r\n", "\t\t\t", " " * 40, "\u00a0\u00a0", "<unk><unk>",
    "<|im_start|><|im_start|>", "<start_of_turn><end_of_turn>",
    # Gemma 3's `</s>` is user-defined in the file; llama.cpp makes it a control token by its text.
    "</s>", "a</s>b", "<s></s>", "<table></table>",
]
BOS_SAMPLES = ["hello", "", " leading space", "<|im_start|>user", "<start_of_turn>user"]


def detokenize(llm, ids, render_special: bool) -> bytes:
    """llama.cpp's `llama_detokenize` (BOS/EOS kept). Not `Llama.detokenize`: llama-cpp-python
    0.3.36 reads each piece into a 32-byte buffer and silently truncates longer ones (SmolLM2's
    `"-" * 80` comes back as 16 dashes), a binding bug, not llama.cpp's behaviour."""
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 8 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        vocab = llm._model.vocab
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, render_special)
        if n >= 0:
            return buf.raw[:n]
        size = -n


def main() -> int:
    for name, file in MODELS.items():
        path = ROOT / "models" / file
        if not path.exists():
            print(f"{path} is missing: run scripts/fetch-models", file=sys.stderr)
            return 1
        corpus = [c["text"] for c in json.loads((GOLDEN / f"{name}.json").read_text())["cases"]]
        corpus += PROBES
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        cases = []
        n_special = 0
        for text in corpus:
            raw = text.encode("utf-8")
            ids = llm.tokenize(raw, add_bos=False, special=False)
            case = {"text": text, "ids": ids}
            special = llm.tokenize(raw, add_bos=False, special=True)
            if special != ids:
                case["ids_special"] = special
                n_special += 1
            # llama.cpp's detokenization, stored only where it is not the text itself.
            for key, toks, render in (
                ("decoded", ids, False),
                ("decoded_special_hidden", special, False),
                ("decoded_special_rendered", special, True),
            ):
                back = detokenize(llm, toks, render).decode("utf-8", "replace")
                if back != text:
                    case[key] = back
            cases.append(case)
        bos = [
            {"text": t, "ids": llm.tokenize(t.encode("utf-8"), add_bos=True, special=True)}
            for t in BOS_SAMPLES
        ]
        doc = {
            "model": file,
            "reference": f"llama.cpp via llama-cpp-python {llama_cpp.__version__} "
            "(Llama(vocab_only=True).tokenize)",
            "generator": "tools/tokenizer_llamacpp_golden.py",
            "flags": "ids: add_bos=False, special=False; ids_special (only where different): "
            "add_bos=False, special=True; bos: add_bos=True, special=True; decoded* (only where "
            "not the text; invalid UTF-8 replaced by U+FFFD): llama_detokenize(remove_special=False) "
            "of ids (unparse_special=False), of ids_special (unparse_special=False, then True)",
            "corpus": f"the texts of {name}.json, in order, then {len(PROBES)} probe strings",
            "bos_token_id": llm.token_bos(),
            "eos_token_id": llm.token_eos(),
            "bos": bos,
            "cases": cases,
        }
        out = GOLDEN / f"{name}.llamacpp.json"
        with out.open("w", encoding="utf-8") as f:
            f.write("{\n")
            items = list(doc.items())
            for k, (key, value) in enumerate(items):
                sep = "," if k + 1 < len(items) else ""
                if isinstance(value, list):
                    f.write(f"  {json.dumps(key)}: [\n")
                    for j, row in enumerate(value):
                        rsep = "," if j + 1 < len(value) else ""
                        f.write(f"    {json.dumps(row, ensure_ascii=False)}{rsep}\n")
                    f.write(f"  ]{sep}\n")
                else:
                    f.write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{sep}\n")
            f.write("}\n")
        print(f"{out.relative_to(ROOT)}: {len(cases)} strings, {n_special} differ with special=True")
    return 0


if __name__ == "__main__":
    sys.exit(main())
