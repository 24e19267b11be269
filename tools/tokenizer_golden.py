#!/usr/bin/env python3
"""Writes the tokenizer golden files under testdata/golden/tokenizer/.

For every string of a fixed corpus (>= 300 strings: English, code, whitespace runs, tabs and
newlines, numbers, CJK, Arabic, emoji with ZWJ, combining marks, escape look-alikes, very long
words, special-token look-alikes, seeded random mixes) it records the token ids that an
independent reference tokenizer gives, built from the vocabulary stored in each test model's
GGUF metadata (read with the `gguf` package). Nothing here imports Kaiyuan's code.

References (interim; the issue's final reference is llama.cpp through `llama-cpp-python`):

  smollm2  Hugging Face `tokenizers`, configured as SmolLM2's own tokenizer.json is: BPE over
           the GGUF tokens/merges, pre-tokenizer Digits(individual) + ByteLevel(GPT-2 regex,
           no prefix space). That is also llama.cpp's `smollm` pre-type (split on \\p{N}, then the
           GPT-2 regex). transformers' own GGUF conversion is NOT used: it needs torch in
           transformers 5, and it maps `pre = smollm` to plain GPT-2 splitting (no digit split),
           which differs from llama.cpp on every multi-digit number.
  gemma3   Google's `sentencepiece` library, running a ModelProto rebuilt from the GGUF
           (pieces, scores, types; BPE, byte fallback, identity normalizer, no dummy prefix,
           whitespace escaped to U+2581). The GGUF spells the user-defined space-run tokens with
           real spaces ("  "); sentencepiece sees text after escaping, so they are respelled
           "\u2581\u2581" here (how Gemma's tokenizer.model spells them). `<unk>` is typed UNKNOWN
           (sentencepiece requires one; the GGUF marks it control).

Also writes pretokenize.json: for each pre-tokenizer variant Kaiyuan implements (gpt2, smollm,
llama3, qwen2, deepseek-v3, deepseek-llm, default, qwen35, deepseek-coder, falcon), the pieces Hugging Face `tokenizers` cuts each
corpus string (and 1000 seeded random strings dense in regex-relevant characters, then the
deepseek-llm strings below) into, with the variant's split regex run by its Oniguruma engine
(`pre_tokenizers.Split(Regex(..), "isolated")`; smollm: `Digits(individual_digits)` first).
Stored as UTF-8 byte lengths. The deepseek-llm strings: fixed strings of the scripts its
character classes hold or leave out (deepseek_llm_texts), then every first and last code point
of each range of those classes with its outside neighbours, and 300 seeded random strings of
them (deepseek_llm_range_texts); all variants are checked on them.

And variants.json: ids of the corpus, then the fixed deepseek-llm strings, for SmolLM2's
vocabulary and merges re-used under each other byte-level pre-tokenizer variant (gpt2, llama3
with `ignore_merges` as Llama 3's tokenizer.json has it, qwen2, deepseek-v3, deepseek-llm,
default), by Hugging Face `tokenizers` configured the same way
(Split(regex) + ByteLevel(use_regex=False) + BPE). Every 7th merge (index % 7 == 3) is
dropped, so that many vocabulary words are unreachable by merges and Llama 3's whole-word
lookup changes the result (it would not with the full merge list).

Gemma 3 records of text without user-defined tokens also hold "ids_space_prefix": the ids
with `add_space_prefix` on (Llama 2's leading-space rule, which Gemma 3 turns off), from
sentencepiece with `add_dummy_prefix`.

Each record holds "ids" (no special-token parsing; what `encode(text, allow_special=false)`
must give without BOS/EOS) and, for strings that contain a control token literally,
"ids_special" (control tokens recognised: the text is cut at the leftmost-longest control
token, each control token becomes its id and each piece between is encoded as above).

Usage: .venv/bin/python tools/tokenizer_golden.py [--models DIR] [--out DIR] [--pretokenize-only]
Needs: gguf, tokenizers, sentencepiece, protobuf (see testdata/golden/tokenizer/README.md);
--pretokenize-only writes pretokenize.json alone and needs only `tokenizers`.
The output is deterministic (fixed seed, no timestamps).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys

import gguf

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = "gemma-3-270m-q4_k_m.gguf"

CONTROL = 3
USER_DEFINED = 4


def read_tokenizer_metadata(path: str) -> dict:
    reader = gguf.GGUFReader(path)
    out = {}
    for key, field in reader.fields.items():
        if key.startswith("tokenizer.ggml."):
            out[key[len("tokenizer.ggml."):]] = field.contents()
    return out


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

def corpus() -> list[str]:
    fixed = [
        "", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "a", "A", "1",
        "Hello world", "Hello, world!", " Hello world", "Hello  world", "Hello   world ",
        "The quick brown fox jumps over the lazy dog.",
        "It's a dog's life, isn't it? We're sure they'll say you've I'm he'd.",
        "IT'S LOUD, ISN'T IT? WE'RE", "don't'", "''quoted''", "'s's 't", "can't won't shan't",
        "Mr. O'Neill's 3rd-floor flat cost $1,250.99 (approx.)",
        "e-mail: someone@example.com, https://example.org/path?q=1&r=two#frag",
        "0", "12", "123", "1234", "12345", "1234567890", "3.14159", "-42", "+1e-10", "1,000,000",
        "2024-05-17T12:34:56Z", "v1.2.3-rc.4", "0x1F 0b1010 0o777", "½ ¾ ² ³ Ⅻ ٣ ४ ๓",
        "item1 item22 item333", "a1b2c3", "ABC123def456",
        "def foo(x):\n    return x * 2\n",
        "fn main() {\n\tprintln!(\"{}\", 1 + 2);\n}\n",
        "if (a && b || !c) { x += 1; } else { y -= 2; }",
        "for i in range(10):\n        print(i)\n\n\n",
        "#include <stdio.h>\nint main(void) { return 0; }",
        "SELECT * FROM users WHERE id = 42;",
        "<div class=\"x\">text</div>", "<table><tr><td>1</td></tr></table>",
        "{\"key\": [1, 2, {\"nested\": null}], \"b\": true}",
        "x = [i**2 for i in range(5) if i % 2 == 0]",
        "    indented four", "\tindented tab", "\t\ttwo tabs", "mixed \t tab", " \t \t ",
        "trailing   ", "   ", "a\n\nb\n\n\nc", "line1\r\nline2\r\n", "\u00a0nbsp\u00a0", "em\u2003space",
        "ideographic\u3000space", "zero\u200bwidth", "a\u2028b\u2029c", "\x0bvt\x0cff",
        "日本語のテキストです。", "中文测试，你好世界！", "한국어 텍스트입니다", "ภาษาไทย",
        "Привет, мир! Как дела?", "Ελληνικά γράμματα", "עברית טקסט", "हिन्दी पाठ",
        "مرحبا بالعالم", "السلام عليكم ورحمة الله", "العربية 123 English",
        "😀", "😀😀😀", "👨\u200d👩\u200d👧\u200d👦", "👍🏽", "🇯🇵🇺🇸", "❤️", "family: 👨‍👩‍👧 ok",
        "e\u0301", "cafe\u0301", "café", "n\u0303o\u0308", "Z\u0351\u0300\u0317a\u0358\u0350lgo",
        "\u0915\u094d\u0937", "a\u0300\u0301\u0302\u0303\u0304",
        "\\n", "\\t", "\\u0041", "\\x41", "\\\\", "%s %d %%", "\\0", "<0x41>", "<0xZZ>", "<0x0A>",
        "\u2581", "\u2581\u2581x", "▁hello", "Ġhello", "Ċ", "ĠĠ",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>\n",
        "<start_of_turn>user\nHi<end_of_turn>\n", "<end_of_turn>", "<bos>", "<eos>", "<pad>",
        "<unk>", "<mask>", "<unused0>", "<start_of_image>", "[multimodal]",
        "<|im_end", "|im_end|>", "<|im_end|", "<<|im_end|>>", "<|im_end|><|im_end|>",
        "text<|im_end|>text", "<end_of_turn><end_of_turn>", "<end_of_turn", "end_of_turn>",
        "<|IM_END|>", "< |im_end| >", "<repo_name>x<file_sep>",
        "a" * 100, "ab" * 60, "x" * 257, "supercalifragilisticexpialidocious" * 3,
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft",
        "1" * 50, "9" * 33 + " " + "0" * 17, "!" * 40, "." * 64, "-" * 80, "=" * 30,
        " " * 40, "\n" * 40, "\t" * 40, " \n" * 10, "\n \n  \n   \n",
        "tab\tseparated\tvalues\t1\t2", "a \n b", "a\t\nb", "a \u00a0 b",
        "Ünïcödé Àccénts Ñ ß ẞ ø Œ", "İstanbul ıi", "ǅ ǈ ǋ",
        "mixed日本語and English123と数字", "Emoji🙂inside😀words", "CJK标点：“引号”《书名》",
        "$€£¥₹₿", "∑∫√∞≈≠≤≥", "→←↑↓⇒", "©®™", "…—–•·", "«guillemets» „quotes“",
        "math: x² + y² = z²", "fraction ⅓ and ⅔", "superscript¹²³",
        "\U0001F600\U0001F601 \U0001F9D1\u200d\U0001F4BB", "🏳️‍🌈", "👩🏾‍🚀",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙", "𠀀𠀁 rare CJK ext B", "\U0010FFFD private",
        "\ufeffBOM at start", "soft\u00adhyphen", "ligature ﬁ ﬂ", "fullwidth ＡＢＣ１２３",
        "   leading spaces", "trailing spaces   ", " both ", "\n\nleading newlines",
        "trailing newlines\n\n", "multiple    spaces    between    words",
    ]

    gen: list[str] = []
    # whitespace runs of every kind and length, between and around words
    for ws in [" ", "\t", "\n", "\r\n", " \t", "\u3000", "\u00a0"]:
        for n in [1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 33]:
            gen.append("a" + ws * n + "b")
        gen.append(ws * 5 + "x")
        gen.append("x" + ws * 5)
    # numbers of every length, alone and attached
    for n in range(1, 13):
        digits = "".join(str((i * 7 + 3) % 10) for i in range(n))
        gen.append(digits)
        gen.append("abc" + digits + "def")
        gen.append(" " + digits)
    # contractions and punctuation attachments
    for w in ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'X", "'"]:
        gen.append("word" + w + " next")
        gen.append(" " + w)
    for p in ["!", "?", "...", "--", "()", "[]", "{}", ";", ":", "@#", "&&", "||", "->", "=>", "::"]:
        gen.append("a" + p + "b")
        gen.append(" " + p + " ")

    # seeded random mixes of characters from many categories
    rng = random.Random(20261128)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r  ",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "日本語中文字한국어ひらがなカタカナ",
        "مرحباالعربيةשלוםΑλφαβητοкириллица",
        "😀🙂👍🏽❤️🇯🇵👨\u200d👩\u200d👧🚀",
        "\u0301\u0303\u0308\u0327\u200b\u200d\u00a0\u3000\u2581",
        "éèêëàâäçñöüßøåæœ",
        "½²³ⅫⅩ٣४",
    ]
    for _ in range(140):
        length = rng.randint(1, 40)
        s = "".join(rng.choice(rng.choice(pools)) for _ in range(length))
        gen.append(s)
    # random word salad with specials sprinkled in
    words = ["the", "The", " of", "and", "token", "izer", "Kaiyuan", "GGUF", "<|im_end|>",
             "<end_of_turn>", "<bos>", "\n", "  ", "\t", "42", "3.5", "日本", "😀", "don't", "e\u0301"]
    for _ in range(40):
        gen.append("".join(rng.choice(words) for _ in range(rng.randint(2, 15))))

    # the first 300 of the pre-tokenizer stress strings (see pretokenizer_stress_texts)
    gen += pretokenizer_stress_texts()[:300]

    seen = set()
    out = []
    for s in fixed + gen:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------

def smollm2_reference(meta: dict):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    assert meta["model"] == "gpt2" and meta["pre"] == "smollm", (meta["model"], meta["pre"])
    tokens = meta["tokens"]
    vocab = {t: i for i, t in enumerate(tokens)}
    merges = [tuple(m.split(" ")) for m in meta["merges"]]

    def build(with_special: bool):
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ]
        )
        tok.decoder = decoders.ByteLevel()
        if with_special:
            tok.add_special_tokens(
                [AddedToken(t, normalized=False, special=True)
                 for t, ty in zip(tokens, meta["token_type"]) if ty == CONTROL]
            )
        return tok

    plain, special = build(False), build(True)

    def encode(text: str) -> list[int]:
        return plain.encode(text, add_special_tokens=False).ids

    def encode_special(text: str) -> list[int]:
        return special.encode(text, add_special_tokens=False).ids

    return encode, encode_special


def gemma3_reference(meta: dict, dummy_prefix: bool = False):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    assert meta["model"] == "llama", meta["model"]
    assert not meta.get("add_space_prefix", False)
    assert "\u2581" not in "".join(t for t, ty in zip(meta["tokens"], meta["token_type"]) if ty == USER_DEFINED)
    tokens, scores, types = meta["tokens"], meta["scores"], meta["token_type"]
    unk = meta["unknown_token_id"]

    proto = pb.ModelProto()
    for i, (t, s, ty) in enumerate(zip(tokens, scores, types)):
        piece = proto.pieces.add()
        if ty == USER_DEFINED and t and set(t) == {" "}:
            t = "\u2581" * len(t)
        piece.piece = t
        piece.score = float(s)
        piece.type = pb.ModelProto.SentencePiece.UNKNOWN if i == unk else int(ty)
    ts = proto.trainer_spec
    ts.model_type = pb.TrainerSpec.BPE
    ts.vocab_size = len(tokens)
    ts.byte_fallback = True
    ts.unk_id = unk
    ts.bos_id = meta["bos_token_id"]
    ts.eos_id = meta["eos_token_id"]
    ts.pad_id = meta["padding_token_id"]
    ns = proto.normalizer_spec
    ns.name = "identity"
    ns.add_dummy_prefix = dummy_prefix
    ns.remove_extra_whitespaces = False
    ns.escape_whitespaces = True
    sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())

    def encode(text: str) -> list[int]:
        return list(sp.encode(text))

    controls = sorted({t for t, ty in zip(tokens, types) if ty == CONTROL}, key=len, reverse=True)
    control_re = re.compile("|".join(re.escape(t) for t in controls))
    control_id = {t: i for i, (t, ty) in enumerate(zip(tokens, types)) if ty == CONTROL}

    def encode_special(text: str) -> list[int]:
        out, pos = [], 0
        for m in control_re.finditer(text):
            out += encode(text[pos:m.start()])
            out.append(control_id[m.group(0)])
            pos = m.end()
        return out + encode(text[pos:])

    return encode, encode_special, sp


GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
DEEPSEEK_V3_SPLITS = [
    r"\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+"""
    r"""| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
]
# DeepSeek LLM 7B/67B (`deepseek-llm`): the Split regexes of its tokenizer.json, which llama.cpp
# lists for this name too. Written with escapes because six of the characters (U+1F7D, U+1FBE,
# U+1FD3, U+1FDB, U+2126, U+212A) change under Unicode normalization: a normalized copy turns
# ranges upside down (U+1F5F-U+03CE) or widens "K-" (U+212A) to start at ASCII "K".
DEEPSEEK_LLM_LETTERS = (
    "A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
    "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1"
    "\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd"
    "\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d"
    "\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4"
    "\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec"
    "\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128"
    "\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b"
    "\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787"
    "\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a"
    "\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2"
    "\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943"
)
DEEPSEEK_LLM_PUNCT = "!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002"
DEEPSEEK_LLM_CJK = "\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff"
DEEPSEEK_LLM_SPLITS = [
    "[\r\n]",
    "\\s?[" + DEEPSEEK_LLM_LETTERS + "]+",
    "\\s?[" + DEEPSEEK_LLM_PUNCT + "]+",
    "\\s+$",
    "[" + DEEPSEEK_LLM_CJK + "]+",
    "\\p{N}+",
]
# llama.cpp's `default` for byte-level BPE.
DEFAULT_SPLITS = [r"[\p{P}\$\+<=>\^~\|]+", GPT2_SPLIT, r"\p{N}+", r"[0-9][0-9][0-9]"]
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Qwen3.5 (`qwen35`): Qwen2's regex with combining marks joining letters.
QWEN35_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}"
    r"| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# DeepSeek Coder (`deepseek-coder`), as llama.cpp lists it.
DEEPSEEK_CODER_SPLITS = [
    "[\r\n]",
    r"\s?\p{L}+",
    r"\s?\p{P}+",
    "[" + DEEPSEEK_LLM_CJK + "]+",
    r"\p{N}",
]
# Falcon (`falcon`), as llama.cpp lists it (its second regex is GPT-2's).
FALCON_SPLITS = [r"[\p{P}\$\+<=>\^~\|`]+", GPT2_SPLIT, r"[0-9][0-9][0-9]"]


def pretokenizer_stress_texts() -> list[str]:
    """1000 seeded random strings dense in the characters the split regexes treat specially."""
    rng = random.Random(424242)
    pool = (
        list("aZ'sStTrReEvVlLmMdD") + list("0123456789") + list(" \t\n\r  ")
        + list("!?.,;:-_()[]{}<>/\\|@#$%^&*+=~`\"")
        + ["\u00a0", "\u3000", "\u2028", "\x0b", "\x0c", "\x85", "\u200d", "\u200b", "\u0301",
           "\u0308", "\u0903", "\u20dd", "\u00b2", "\u00bd", "\u2167", "\u0663", "\u00e9", "\u00df",
           "\u01c5", "\u02b0", "\u4e00", "\u9fa5", "\u9fa6", "\u3042", "\u30a2", "\u30fc", "\uac00",
           "\u05d0", "\u0627", "\u00a7", "\u00ab", "\u2014", "\u20ac", "\U0001F600", "\U0001F3FD",
           "\uff01", "\uff21", "\u0000", "\u007f", "\ufeff", "\U0001D400"]
    )
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(1000)]


def class_ranges(spec: str) -> list[tuple[int, int]]:
    """The (first, last) code points of a regex character class body such as "a-z\u00b5"."""
    out, i = [], 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.append((ord(spec[i]), ord(spec[i + 2])))
            i += 3
        else:
            out.append((ord(spec[i]), ord(spec[i])))
            i += 1
    return out


def deepseek_llm_texts() -> list[str]:
    """Fixed strings for deepseek-llm's regexes: the scripts its classes hold or leave out
    (micro sign, U+01BB, Cyrillic, Armenian capitals and small letters, fullwidth letters and
    digits, ideographic space and full stop, curly quotes, Hangul, CJK outside U+4E00..U+9FA5,
    the six normalization-sensitive letters, digits of several scripts), trailing whitespace,
    CR/LF. Escaped so that no editor or tool can normalize them."""
    return [
        "\u00b5m \u01bb \u01bc\u01bd\u01be\u01bf \u01c4\u01c5\u01c6 \u0294 \u0295 \u02b0",
        "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440 \u0531\u0561",
        "\uff21\uff22\uff23 \uff41\uff42\uff43 \uff11\uff12\uff13 \uff01\uff1f\uff08\uff09",
        "\u5168\u89d2\u3000\u30b9\u30da\u30fc\u30b9\u3002\u8aad\u70b9\u3001\u53e5\u70b9\u3002",
        "\u2018single\u2019 \u201cdouble\u201d \u201elow\u201f \u2017\u2020",
        "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8 \u3131\u3134 \ud7a3 \ud7fb \ua960",
        "\u3400\u3401 \U00020000\U00020001 \u9fa5\u9fa6 \u4e00 \uf900 \u07ff\u0800",
        "\u2126 \u212a \u2103 \u2109 \u212b \u03a9 K",
        "\u1fd3 \u1fe3 \u1f7d \u1fbe \u1fdb \u0390 \u03b0",
        "\u0663\u0664 \u096a\u096b \u0e53\u0e54 \U0001d7d9 \u216b \u00bd \u00b2 \u2460",
        "x   \n  y  \t", "abc   ", "abc\u3000", "1 2 3   ", "  \u00a0", "a\r\nb\r\n", "\r\r\n\n",
        "tab\tend\t", "\u13a0 \uab70 \u13f5 \u13f8", "\u10a0 \u10d0 \u1c90", "\u1e9e \u00df \ufb00 \ufb13",
        "\U00010400\U0001044f \U000104b0 \U0001e900\U0001e943 \U000118a0",
        "\u1d00\u1d2b \u1d6b \u1d78 \u1d9a", "\u2c00 \u2c7b \u2c7c \u2c7e\u2ce4\u2ceb",
        "cafe\u0301 caf\u00e9 na\u00efve", "def f(x):\n    return x  \n",
        "\u4e2d\u6587\uff0c\u6d4b\u8bd5\u3002\u300c\u5f15\u53f7\u300d", "   \u0915\u093f   ",
        "price: 100\u20ac, 200$ and \u00a5300", "e=mc^2 [x] {y} `z` ~w", " \u3000 \u3000x",
    ]


def deepseek_llm_range_texts() -> list[str]:
    """For the pre-tokenizer golden only: every first and last code point of each range of
    deepseek-llm's three classes and the code points just outside, each in one string (inside
    an ASCII word, after a space, repeated, before a digit and a trailing space, after an
    ideographic space); then 300 seeded random strings of those code points, whitespace,
    newlines and digits of several scripts."""
    edges = set()
    for spec in (DEEPSEEK_LLM_LETTERS, DEEPSEEK_LLM_PUNCT, DEEPSEEK_LLM_CJK):
        for lo, hi in class_ranges(spec):
            assert lo <= hi, (hex(lo), hex(hi))
            edges.update([lo - 1, lo, hi, hi + 1])
    edges = sorted(c for c in edges if 0x20 < c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF)
    out = [f"a{c}b {c}{c}1 \u3000{c}" for c in map(chr, edges)]
    rng = random.Random(7_2024)
    pool = ([chr(c) for c in edges] + list("aZ09 \t\n\r!~:/") + ["\u3000", "\u00a0", "\u2028", "\x85",
            "\u0663", "\uff11", "\u00bd", "\u4e2d", "\uac00", "\u00e9", "\u0301", "\U0001F600"])
    out += ["".join(rng.choice(pool) for _ in range(rng.randint(1, 24))) for _ in range(300)]
    return out


def pretokenizer_golden(texts: list[str]) -> dict:
    from tokenizers import Regex, pre_tokenizers as pt

    def split(regex):
        return pt.Split(Regex(regex), behavior="isolated")

    variants = {
        "gpt2": split(GPT2_SPLIT),
        "smollm": pt.Sequence([pt.Digits(individual_digits=True), split(GPT2_SPLIT)]),
        "llama3": split(LLAMA3_SPLIT),
        "qwen2": split(QWEN2_SPLIT),
        "deepseek-v3": pt.Sequence([split(r) for r in DEEPSEEK_V3_SPLITS]),
        "deepseek-llm": pt.Sequence([split(r) for r in DEEPSEEK_LLM_SPLITS]),
        "default": pt.Sequence([split(r) for r in DEFAULT_SPLITS]),
        "qwen35": split(QWEN35_SPLIT),
        "deepseek-coder": pt.Sequence([split(r) for r in DEEPSEEK_CODER_SPLITS]),
        "falcon": pt.Sequence([split(r) for r in FALCON_SPLITS]),
    }
    out = {}
    for name, pre in variants.items():
        rows = []
        for text in texts:
            pieces = [p for p, _ in pre.pre_tokenize_str(text)]
            assert "".join(pieces) == text, (name, text)
            rows.append([len(p.encode("utf-8")) for p in pieces])
        out[name] = rows
    return out


def variants_golden(meta: dict, texts: list[str]) -> dict:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers as pt

    vocab = {t: i for i, t in enumerate(meta["tokens"])}
    merges = [tuple(m.split(" ")) for i, m in enumerate(meta["merges"]) if i % 7 != 3]
    out = {}
    for name, regex, ignore_merges in [
        ("gpt2", GPT2_SPLIT, False),
        ("llama3", LLAMA3_SPLIT, True),
        ("qwen2", QWEN2_SPLIT, False),
        ("deepseek-v3", DEEPSEEK_V3_SPLITS, False),
        ("deepseek-llm", DEEPSEEK_LLM_SPLITS, False),
        ("default", DEFAULT_SPLITS, False),
    ]:
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
        regexes = regex if isinstance(regex, list) else [regex]
        tok.pre_tokenizer = pt.Sequence(
            [pt.Split(Regex(r), behavior="isolated") for r in regexes]
            + [pt.ByteLevel(add_prefix_space=False, use_regex=False)]
        )
        out[name] = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--models", default=os.path.join(repo, "models"))
    ap.add_argument("--out", default=os.path.join(repo, "testdata", "golden", "tokenizer"))
    ap.add_argument("--pretokenize-only", action="store_true",
                    help="write pretokenize.json only (needs no model file nor sentencepiece)")
    args = ap.parse_args()

    import tokenizers

    texts = corpus()
    assert len(texts) >= 300, len(texts)
    os.makedirs(args.out, exist_ok=True)

    known = set(texts)
    extra = [t for t in deepseek_llm_texts() if t not in known]
    known.update(extra)
    ranges = [t for t in dict.fromkeys(deepseek_llm_range_texts()) if t not in known]
    pre_texts = texts + pretokenizer_stress_texts() + extra + ranges
    pre = pretokenizer_golden(pre_texts)
    path = os.path.join(args.out, "pretokenize.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(f'  "reference": "tokenizers {tokenizers.__version__} pre_tokenizers.Split (Oniguruma)",\n')
        f.write('  "generator": "tools/tokenizer_golden.py",\n')
        f.write('  "texts": [\n')
        f.write(",\n".join("    " + json.dumps(t, ensure_ascii=True) for t in pre_texts))
        f.write("\n  ],\n")
        f.write('  "piece_byte_lengths": {\n')
        f.write(",\n".join(
            f'    "{name}": [' + ",".join(json.dumps(r, separators=(",", ":")) for r in rows) + "]"
            for name, rows in pre.items()))
        f.write("\n  }\n}\n")
    print(f"{path}: {len(pre)} variants", file=sys.stderr)
    if args.pretokenize_only:
        return 0

    import google.protobuf
    import sentencepiece

    var_texts = texts + extra
    var = variants_golden(read_tokenizer_metadata(os.path.join(args.models, SMOLLM2)), var_texts)
    path = os.path.join(args.out, "variants.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(f'  "model": "{SMOLLM2} (vocabulary and merges only)",\n')
        f.write('  "dropped_merges": "index % 7 == 3",\n')
        f.write(f'  "reference": "tokenizers {tokenizers.__version__} BPE + Split(regex) + ByteLevel",\n')
        f.write('  "generator": "tools/tokenizer_golden.py",\n')
        f.write('  "texts": [\n')
        f.write(",\n".join("    " + json.dumps(t, ensure_ascii=True) for t in var_texts))
        f.write("\n  ],\n")
        f.write('  "ids": {\n')
        f.write(",\n".join(
            f'    "{name}": [' + ",".join(json.dumps(r, separators=(",", ":")) for r in rows) + "]"
            for name, rows in var.items()))
        f.write("\n  }\n}\n")
    print(f"{path}: {len(var)} variants", file=sys.stderr)

    for name, fname in [("smollm2", SMOLLM2), ("gemma3", GEMMA3)]:
        meta = read_tokenizer_metadata(os.path.join(args.models, fname))
        control = [t for t, ty in zip(meta["tokens"], meta["token_type"]) if ty == CONTROL]
        if name == "smollm2":
            encode, encode_special = smollm2_reference(meta)
            reference = f"tokenizers {tokenizers.__version__} (BPE + Digits(individual) + ByteLevel)"
        else:
            encode, encode_special, _ = gemma3_reference(meta)
            encode_prefixed = gemma3_reference(meta, dummy_prefix=True)[0]
            user_defined = [t for t, ty in zip(meta["tokens"], meta["token_type"]) if ty == USER_DEFINED]
            reference = (f"sentencepiece {sentencepiece.__version__} (BPE ModelProto from GGUF), "
                         f"protobuf {google.protobuf.__version__}")
        records = []
        for text in texts:
            rec = {"text": text, "ids": encode(text)}
            if any(c in text for c in control):
                rec["ids_special"] = encode_special(text)
            # The leading-space rule (add_space_prefix, as Llama 2 uses it), checked against
            # sentencepiece's add_dummy_prefix: only where the two agree by definition, i.e. text
            # with no user-defined token (llama.cpp prefixes a space after each of those too),
            # not starting with a space (the prefix would make a run of two, which this
            # reference matches as the respelled space-run token and llama.cpp cannot, since it
            # adds the prefix after matching user-defined tokens) and without U+2581.
            if (name == "gemma3" and text and not any(u in text for u in user_defined)
                    and not text.startswith(" ") and "\u2581" not in text):
                rec["ids_space_prefix"] = encode_prefixed(text)
            records.append(rec)
        doc = {
            "model": fname,
            "reference": reference,
            "generator": "tools/tokenizer_golden.py",
            "gguf_package": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0",
            "add_bos": bool(meta.get("add_bos_token", False)),
            "add_eos": bool(meta.get("add_eos_token", False)),
            "bos_id": int(meta["bos_token_id"]),
            "eos_id": int(meta["eos_token_id"]),
            "cases": records,
        }
        path = os.path.join(args.out, f"{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write("{\n")
            head = [k for k in doc if k != "cases"]
            for k in head:
                f.write(f"  {json.dumps(k)}: {json.dumps(doc[k], ensure_ascii=False)},\n")
            f.write('  "cases": [\n')
            for i, rec in enumerate(records):
                sep = "," if i + 1 < len(records) else ""
                f.write("    " + json.dumps(rec, ensure_ascii=True, separators=(",", ":")) + sep + "\n")
            f.write("  ]\n}\n")
        print(f"{path}: {len(records)} strings, {sum(len(r['ids']) for r in records)} ids", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
