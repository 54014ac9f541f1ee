#!/usr/bin/env python3
"""CLIP tokenizer fixture for sdiff's tests (tests/fixtures/tokenizer_ids.json).

Two modes:

  python3 tools/gen_tokenizer_fixture.py [out.json]
      Needs transformers (run it on the GPU machine). Builds the tokenizer/
      folder a Stable Diffusion 1.x checkpoint ships (vocab.json, merges.txt,
      tokenizer_config.json, special_tokens_map.json) from OpenAI's
      bpe_simple_vocab_16e6.txt.gz exactly as openai/CLIP's SimpleTokenizer
      defines the vocabulary, loads it with transformers.CLIPTokenizer, and
      records the ids diffusers would get:
          tokenizer(prompt, padding="max_length", max_length=77, truncation=True)
      for every prompt below, plus a few with SD 2.x's pad token "!". It also
      runs the pure-Python reference below on the same prompts and prints
      every disagreement (the reference is what sdiff's C code implements).

  python3 tools/gen_tokenizer_fixture.py --reference "prompt" ...
      No transformers needed: prints the reference ids (used for the
      hand-checked cases in tests/test_tokenizer.c).

The reference re-implements the `tokenizers` pipeline of transformers v5's
CLIPTokenizer from the Python standard library alone: special tokens cut out
of the normalized text, NFC, per-character lowercase, the CLIP split regex
with \\p{L} / \\p{N} from unicodedata and \\s = Unicode White_Space, GPT-2
byte-level characters, BPE with "</w>" (lowest rank first, leftmost on ties).
"""
import gzip
import json
import os
import sys
import tempfile
import unicodedata

BPE_GZ = os.environ.get("CLIP_BPE", "/work/shared/data/clip_bpe_simple_vocab_16e6.txt.gz")
HERE = os.path.dirname(os.path.abspath(__file__))
if not os.path.exists(BPE_GZ):
    BPE_GZ = os.path.join(HERE, "..", "..", "shared", "data", "clip_bpe_simple_vocab_16e6.txt.gz")

PROMPTS = [
    "",
    "   ",
    "a photo of a cat",
    "A Photo Of A CAT",
    "a photograph of an astronaut riding a horse",
    "!!!???...,,,",
    "don't we'll they're I'm you've she'd it's",
    "DON'T WE'LL THEY'RE",
    "'s 's's 'S'' hello's world't ''tis",
    "1234 56.78 1,000,000 2024-01-01",
    "CamelCaseWord iPhone XMLHttpRequest",
    "café naïve résumé",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
    "\u00c5ngstr\u00f6m vs A\u030angstro\u0308m",
    "e\u0301\u0323 o\u0323\u0302 q\u0307\u0323",
    "Straße groß STRASSE \u1e9e",
    "\u0130stanbul \u0131I i\u0307",
    "Ελληνικά ΣΟΦΙΑ ὈΔΥΣΣΕΎΣ σοφός",
    "Привет, мир! ЁЖИК",
    "猫が好きです 中文字符 한국어 テスト",
    "\u1112\u1161\u11ab\u1100\u116e\u11a8 decomposed hangul",
    "emoji 😀🎉🔥",
    "👨‍👩‍👧‍👦 family 👍🏽 thumbs",
    "🏳️‍🌈 flag 🇯🇵 ❤️",
    "tabs\tand\nnewlines\r\nmixed   spaces\x0bvt\x0cff",
    "a " * 100,
    "a " * 75,
    "a " * 76,
    "<|startoftext|>a cat<|endoftext|> dog",
    "<|STARTOFTEXT|> upper special <|EndOfText|>",
    "<|endoftext|><|endoftext|>",
    "<|ENDOFTEXT|>x <|Startoftext|>y",
    "x'<|endoftext|>!<|startoftext|>",
    "cat " * 40,
    "https://example.com/path?q=1&x=y#frag",
    "a_b-c a__b--c snake_case_name",
    "non\u00a0breaking\u00a0space and\u3000ideographic\u2003em",
    "control\x07chars\x1b[0m and zero\u200bwidth\u200djoiner",
    "masterpiece, best quality, (ultra-detailed:1.2), [blurry], {cute}, <lora:abc:0.8>",
    "½ ² ³ Ⅻ ① ⅷ",
    "٣٤٥ arabic-indic digits, العربية",
    "ﬁ ligature ﬀ ﬃ",
    "\u2126 \u212b \u212a ohm angstrom kelvin",
    "\u0344 \u0958 \u0f73 exclusions",
    "mathematical 𝐀𝐁𝐂 bold 𝟙𝟚",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "thequickbrownfoxjumpsoverthelazydog",
    "x" * 300,
    "\u00a0",
    "1girl, solo, looking at viewer, ((best quality))",
    "&amp; &lt;tag&gt; html entities",
]
SD2_PROMPTS = ["", "a photo of a cat", "a " * 100, "hello! world!!! wow!", "<|ENDOFTEXT|>x <|STARTOFTEXT|>y",
               "!!!???...,,,", "a!b"]

WHITE_SPACE = set([*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                   0x2028, 0x2029, 0x202F, 0x205F, 0x3000])


from clip_bpe import bytes_to_unicode  # noqa: E402  (tools/ is the script directory)


def merges_from_builtin_header():
    """The same merges decoded from sdiff_clip_vocab.h (for machines without
    the .gz; see tools/gen_clip_vocab.py for the format)."""
    import re
    text = open(os.path.join(HERE, "..", "sdiff_clip_vocab.h"), encoding="ascii").read()
    body = text[text.index("sdiff__clip_merges_chunks[]"):]
    data = "".join(re.findall(r'"([0-9A-Za-z+\-]*)"', body))
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-"
    val = {c: i for i, c in enumerate(alphabet)}
    tokens = list(bytes_to_unicode().values())
    tokens = tokens + [v + "</w>" for v in tokens]
    merges = []
    for k in range(0, len(data), 6):
        a = val[data[k]] << 12 | val[data[k + 1]] << 6 | val[data[k + 2]]
        b = val[data[k + 3]] << 12 | val[data[k + 4]] << 6 | val[data[k + 5]]
        merges.append((tokens[a], tokens[b]))
        tokens.append(tokens[a] + tokens[b])
    return merges


def clip_vocab():
    """openai/CLIP simple_tokenizer.py's vocabulary and merges."""
    if os.path.exists(BPE_GZ):
        merges = gzip.open(BPE_GZ).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
    else:
        print("no", BPE_GZ, "- using sdiff_clip_vocab.h")
        merges = merges_from_builtin_header()
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    for m in merges:
        vocab.append("".join(m))
    vocab.extend(["<|startoftext|>", "<|endoftext|>"])
    return {v: i for i, v in enumerate(vocab)}, merges


class Reference:
    """pad_token and the special tokens' "normalized" flags as SD's configs
    set them (see write_sd_tokenizer_dir): AddedToken objects with
    normalized=True for bos/eos/unk, a plain-string pad (normalized=False);
    for one text named twice, the later of bos, eos, unk, pad wins."""

    def __init__(self, pad_token="<|endoftext|>"):
        self.encoder, merges = clip_vocab()
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_chars = bytes_to_unicode()
        self.pad = self.encoder[pad_token]
        flags = {}
        for text, norm in (("<|startoftext|>", True), ("<|endoftext|>", True), ("<|endoftext|>", True), (pad_token, False)):
            flags[text] = norm
        self.specials = [(text, self.encoder[text], norm) for text, norm in flags.items()]

    @staticmethod
    def is_l(ch):
        return unicodedata.category(ch)[0] == "L"

    @staticmethod
    def is_n(ch):
        return unicodedata.category(ch)[0] == "N"

    @staticmethod
    def is_s(ch):
        return ord(ch) in WHITE_SPACE

    def normalize(self, text):
        text = unicodedata.normalize("NFC", text)
        return "".join(ch.lower() for ch in text)  # per character: no final sigma

    def split(self, text):
        out, i, n = [], 0, len(text)
        while i < n:
            ch = text[i]
            if self.is_s(ch):
                i += 1
                continue
            j = i + 1
            for lit in ("<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"):
                if text.startswith(lit, i):
                    j = i + len(lit)
                    break
            else:
                if self.is_l(ch):
                    while j < n and self.is_l(text[j]):
                        j += 1
                elif not self.is_n(ch):
                    while j < n and not (self.is_s(text[j]) or self.is_l(text[j]) or self.is_n(text[j])):
                        j += 1
            if text[i:j] in ("<|startoftext|>", "<|endoftext|>"):
                out += [text[i:i + 2], text[i + 2:j - 2], text[j - 2:j]]  # ByteLevel's GPT-2 regex splits these
            else:
                out.append(text[i:j])
            i = j
        return out

    def bpe(self, word):
        syms = [self.byte_chars[b] for b in word.encode("utf-8")]
        syms[-1] += "</w>"
        while len(syms) > 1:
            best, best_rank = None, None
            for k in range(len(syms) - 1):
                r = self.ranks.get((syms[k], syms[k + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = k, r
            if best is None:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        unk = self.encoder["<|endoftext|>"]
        return [self.encoder.get(s, unk) for s in syms]

    def cut(self, text, normalized):
        """Splits text on the added tokens with this flag (leftmost, longest):
        a list of str pieces and int ids."""
        out, start, i = [], 0, 0
        while i < len(text):
            hits = [(len(t), t, tid) for t, tid, nz in self.specials if nz == normalized and text.startswith(t, i)]
            if hits:
                _, t, tid = max(hits)
                out += [text[start:i], tid]
                i += len(t)
                start = i
            else:
                i += 1
        return out + [text[start:]]

    def encode(self, prompt, max_len=77):
        toks = []
        for piece in self.cut(prompt, False):
            if isinstance(piece, int):
                toks.append(piece)
                continue
            for sub in self.cut(self.normalize(piece), True):
                if isinstance(sub, int):
                    toks.append(sub)
                else:
                    for w in self.split(sub):
                        toks += self.bpe(w)
        toks = toks[:max_len - 2]
        ids = [self.encoder["<|startoftext|>"]] + toks + [self.encoder["<|endoftext|>"]]
        return ids + [self.pad] * (max_len - len(ids))


def write_sd_tokenizer_dir(d, pad_token):
    encoder, merges = clip_vocab()
    with open(os.path.join(d, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")

    def added(tok):
        return {"__type": "AddedToken", "content": tok, "lstrip": False, "normalized": True,
                "rstrip": False, "single_word": False}

    # As in runwayml/stable-diffusion-v1-5 (and SD 2.x, with pad "!").
    cfg = {"add_prefix_space": False, "bos_token": added("<|startoftext|>"), "do_lower_case": True,
           "eos_token": added("<|endoftext|>"), "errors": "replace", "model_max_length": 77,
           "pad_token": pad_token, "tokenizer_class": "CLIPTokenizer", "unk_token": added("<|endoftext|>")}
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    stm = {"bos_token": added("<|startoftext|>"), "eos_token": added("<|endoftext|>"),
           "pad_token": pad_token, "unk_token": added("<|endoftext|>")}
    for k in stm:
        if isinstance(stm[k], dict):
            stm[k] = dict(stm[k])
            stm[k].pop("__type")
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump(stm, f, indent=2)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--reference":
        ref = Reference()
        for p in sys.argv[2:]:
            print(json.dumps(p, ensure_ascii=False), ref.encode(p))
        return
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "tests", "fixtures", "tokenizer_ids.json")
    import transformers
    from transformers import CLIPTokenizer

    cases, mismatches = [], 0
    for pad in ("<|endoftext|>", "!"):
        with tempfile.TemporaryDirectory() as d:
            write_sd_tokenizer_dir(d, pad)
            tok = CLIPTokenizer.from_pretrained(d)
            info = {"class": type(tok).__name__, "mro": [c.__name__ for c in type(tok).__mro__],
                    "is_fast": getattr(tok, "is_fast", None),
                    "backend": str(getattr(tok, "backend_tokenizer", None).normalizer)
                    if getattr(tok, "backend_tokenizer", None) is not None else None}
            print("tokenizer:", info)
            ref = Reference(pad)
            for p in (PROMPTS if pad == "<|endoftext|>" else SD2_PROMPTS):
                ids = tok(p, padding="max_length", max_length=77, truncation=True)["input_ids"]
                ids = [int(x) for x in ids]
                case = {"prompt": p, "ids": ids}
                if pad != "<|endoftext|>":
                    case["pad_token"] = pad
                cases.append(case)
                want = ref.encode(p)
                if want != ids:
                    mismatches += 1
                    print("REFERENCE DIFFERS:", json.dumps(p, ensure_ascii=False))
                    print("  transformers:", ids)
                    print("  reference:   ", want)
    try:
        import tokenizers
        tk_version = tokenizers.__version__
    except ImportError:
        tk_version = None
    doc = {"transformers_version": transformers.__version__, "tokenizers_version": tk_version,
           "tokenizer": info, "cases": cases}
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    print(f"{out}: {len(cases)} cases, {mismatches} differ from the reference")


if __name__ == "__main__":
    main()
