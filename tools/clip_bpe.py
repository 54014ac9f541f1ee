"""CLIP's byte-level BPE tables, shared by the tools that build vocabularies
and fixtures (gen_clip_vocab.py, gen_fixtures.py, gen_tokenizer_fixture.py)."""


def bytes_to_unicode():
    """OpenAI CLIP / GPT-2 byte -> printable unicode char table, in its canonical order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))
