/* test_tokenizer.c - inflate, the CLIP BPE tokenizer and its three vocabulary
   sources (bpe_simple_vocab_16e6.txt.gz, a tokenizer/ folder, the built-in
   sdiff_clip_vocab.h).

   Expected ids come from two places:
   - tok_ref_cases below: printed by the pure-Python reference in
     tools/gen_tokenizer_fixture.py --reference (standard library only), which
     re-implements transformers v5's CLIPTokenizer pipeline independently of
     the C code;
   - tests/fixtures/tokenizer_ids.json: written by the same script on a
     machine with transformers (the real oracle). Without it that part is
     skipped.
   The vocabulary file: $SDIFF_CLIP_BPE, else ../shared/data/ or
   /work/shared/data/clip_bpe_simple_vocab_16e6.txt.gz; tests that need it
   are skipped when none exists. */
#include <time.h>
#include <sys/stat.h>

/* gzip test data, made with Python's gzip module (mtime=0):
   short: ("the quick brown fox jumps over the lazy dog. " * 3) + bytes(range(40))
   long: "line %d: the cat sat on the mat %d\n" % (i, i*i % 97) for i in range(60) */
static const unsigned char tok_gz_fixed[107] = {
    0x1f,0x8b,0x08,0x00,0x00,0x00,0x00,0x00,0x02,0xff,0x2b,0xc9,0x48,0x55,0x28,0x2c,0xcd,0x4c,0xce,0x56,
    0x48,0x2a,0xca,0x2f,0xcf,0x53,0x48,0xcb,0xaf,0x50,0xc8,0x2a,0xcd,0x2d,0x28,0x56,0xc8,0x2f,0x4b,0x2d,
    0x52,0x28,0x01,0x4a,0xe7,0x24,0x56,0x55,0x2a,0xa4,0xe4,0xa7,0xeb,0x81,0x79,0xb4,0x51,0xcc,0xc0,0xc8,
    0xc4,0xcc,0xc2,0xca,0xc6,0xce,0xc1,0xc9,0xc5,0xcd,0xc3,0xcb,0xc7,0x2f,0x20,0x28,0x24,0x2c,0x22,0x2a,
    0x26,0x2e,0x21,0x29,0x25,0x2d,0x23,0x2b,0x27,0xaf,0xa0,0xa8,0xa4,0xac,0xa2,0xaa,0xa6,0x0e,0x00,0xd5,
    0xf1,0x41,0xf5,0xaf,0x00,0x00,0x00,
};
static const unsigned char tok_gz_stored[198] = {
    0x1f,0x8b,0x08,0x00,0x00,0x00,0x00,0x00,0x00,0xff,0x01,0xaf,0x00,0x50,0xff,0x74,0x68,0x65,0x20,0x71,
    0x75,0x69,0x63,0x6b,0x20,0x62,0x72,0x6f,0x77,0x6e,0x20,0x66,0x6f,0x78,0x20,0x6a,0x75,0x6d,0x70,0x73,
    0x20,0x6f,0x76,0x65,0x72,0x20,0x74,0x68,0x65,0x20,0x6c,0x61,0x7a,0x79,0x20,0x64,0x6f,0x67,0x2e,0x20,
    0x74,0x68,0x65,0x20,0x71,0x75,0x69,0x63,0x6b,0x20,0x62,0x72,0x6f,0x77,0x6e,0x20,0x66,0x6f,0x78,0x20,
    0x6a,0x75,0x6d,0x70,0x73,0x20,0x6f,0x76,0x65,0x72,0x20,0x74,0x68,0x65,0x20,0x6c,0x61,0x7a,0x79,0x20,
    0x64,0x6f,0x67,0x2e,0x20,0x74,0x68,0x65,0x20,0x71,0x75,0x69,0x63,0x6b,0x20,0x62,0x72,0x6f,0x77,0x6e,
    0x20,0x66,0x6f,0x78,0x20,0x6a,0x75,0x6d,0x70,0x73,0x20,0x6f,0x76,0x65,0x72,0x20,0x74,0x68,0x65,0x20,
    0x6c,0x61,0x7a,0x79,0x20,0x64,0x6f,0x67,0x2e,0x20,0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,
    0x0a,0x0b,0x0c,0x0d,0x0e,0x0f,0x10,0x11,0x12,0x13,0x14,0x15,0x16,0x17,0x18,0x19,0x1a,0x1b,0x1c,0x1d,
    0x1e,0x1f,0x20,0x21,0x22,0x23,0x24,0x25,0x26,0x27,0xd5,0xf1,0x41,0xf5,0xaf,0x00,0x00,0x00,
};
static const unsigned char tok_gz_dynamic[320] = {
    0x1f,0x8b,0x08,0x00,0x00,0x00,0x00,0x00,0x02,0xff,0x85,0xd4,0x4d,0x4e,0x03,0x31,0x0c,0x86,0xe1,0x3d,
    0xa7,0x98,0x23,0x34,0x76,0x9c,0x1f,0x6e,0x83,0x50,0x25,0x90,0x4a,0x59,0xd0,0xfb,0x8b,0xc2,0x7c,0x5e,
    0xbe,0xc9,0x62,0xa4,0x19,0xe9,0x53,0xec,0x3c,0xf1,0xe4,0xf6,0x79,0xbf,0x1e,0x97,0xd7,0xe3,0xf1,0x71,
    0x3d,0xde,0xdf,0x1e,0xc7,0xcf,0xf3,0xf9,0xbe,0xff,0x7f,0x7e,0x3d,0x5f,0x2f,0x2f,0xb7,0xbf,0x40,0xc1,
    0x40,0x39,0x03,0x86,0x81,0x7a,0x06,0x1c,0x03,0xf3,0x0c,0x54,0x2e,0xd1,0xce,0x44,0x60,0xc2,0xe2,0x4c,
    0x34,0x4c,0xb8,0xd6,0xe8,0xdc,0xa7,0xfa,0x18,0x98,0x68,0xda,0xca,0xc4,0xc4,0x90,0x46,0x61,0x50,0x57,
    0x82,0x45,0x4d,0x65,0xca,0xc2,0xb4,0x2b,0xc2,0xaa,0xdd,0x14,0x61,0xd7,0x4c,0xb0,0xab,0xe7,0x7e,0x18,
    0xb6,0xe5,0x2a,0x2c,0x3b,0x75,0x3a,0x85,0x69,0x3d,0x59,0xd8,0xb6,0x6b,0x14,0x8d,0x6d,0x8b,0x7a,0x31,
    0xc6,0x0d,0x15,0x32,0xc6,0x9d,0x1a,0x15,0x63,0xdc,0xaa,0x23,0x32,0xc6,0x9d,0xf9,0x63,0xb0,0x6e,0xcd,
    0x5e,0x58,0x77,0x66,0x21,0xd6,0x8d,0x74,0x61,0xdd,0xa1,0x04,0xe3,0x36,0x1d,0x91,0x33,0xae,0x69,0xe6,
    0x9c,0x71,0x87,0x0a,0x39,0xe3,0x46,0x5e,0x07,0x8c,0x6b,0x3a,0x45,0x67,0xdc,0xa1,0x7f,0xd5,0x19,0xb7,
    0xc9,0xdf,0x17,0x77,0x42,0x6e,0x9a,0x71,0x4b,0xae,0xb2,0xc0,0xd5,0xb8,0xf8,0x42,0x57,0x91,0xca,0xba,
    0x55,0x74,0x95,0x75,0x5d,0x2e,0x95,0x75,0x4b,0xae,0xc2,0xba,0xd9,0xca,0x62,0x72,0x35,0x96,0x95,0x71,
    0x87,0xe4,0x2a,0xe3,0xf6,0xbc,0xd6,0x19,0xb7,0xe7,0x2a,0x8c,0xdb,0xb3,0x97,0xb9,0x8d,0xc4,0x65,0x5b,
    0x28,0xca,0xb6,0xdd,0xb0,0xed,0xa6,0xc3,0xb7,0x74,0x51,0x77,0xfe,0x11,0xdb,0x43,0x8c,0xb6,0x1d,0x85,
    0xe8,0xdb,0x81,0x8a,0xb1,0x1d,0xcb,0x98,0xab,0xe1,0xfe,0x05,0xfc,0x7f,0x4f,0x77,0x21,0x08,0x00,0x00,
};
static const unsigned char tok_gz_two_members[60] = {
    0x1f,0x8b,0x08,0x00,0x00,0x00,0x00,0x00,0x02,0xff,0x4b,0xcb,0x2c,0x2a,0x2e,0x51,0xc8,0x4d,0xcd,0x4d,
    0x4a,0x2d,0xe2,0x02,0x00,0xa7,0xf4,0x85,0x0a,0x0d,0x00,0x00,0x00,0x1f,0x8b,0x08,0x00,0x00,0x00,0x00,
    0x00,0x00,0xff,0x2b,0x4e,0x4d,0xce,0xcf,0x4b,0xe1,0x02,0x00,0x7e,0xc0,0x0f,0x06,0x07,0x00,0x00,0x00,
};
/* Ids from the pure-Python reference in tools/gen_tokenizer_fixture.py
   (--reference), up to and including <|endoftext|>; the rest is padding. */
static const struct { const char *prompt; int n; int32_t ids[77]; } tok_ref_cases[] = {
    {"a photo of a cat", 7, {49406,320,1125,539,320,2368,49407}},
    {"", 2, {49406,49407}},
    {"   ", 2, {49406,49407}},
    {"A Photo Of A CAT", 7, {49406,320,1125,539,320,2368,49407}},
    {"don't we'll", 6, {49406,847,713,649,1342,49407}},
    {"DON'T WE'LL THEY'RE", 8, {49406,847,713,649,1342,889,982,49407}},
    {"1234 56.78", 11, {49406,272,273,274,275,276,277,269,278,279,49407}},
    {"caf\303\251 na\303\257ve", 6, {49406,15304,1097,35689,563,49407}},
    {"cafe\314\201 nai\314\210ve", 6, {49406,15304,1097,35689,563,49407}},
    {"Stra\303\237e \341\272\236", 8, {49406,1894,127,253,324,127,509,49407}},
    {"\304\260stanbul", 5, {49406,328,16384,11231,49407}},
    {"\316\243\316\237\316\246\316\231\316\221 \317\203\316\277\317\206\317\214\317\202", 22, {49406,139,225,138,123,139,228,138,117,138,365,139,225,138,123,139,228,139,234,139,480,49407}},
    {"\320\237\321\200\320\270\320\262\320\265\321\202, \320\274\320\270\321\200!", 15, {49406,26302,16370,29503,110,22176,141,480,267,38018,16701,141,478,256,49407}},
    {"\347\214\253\343\201\214\345\245\275\343\201\215\343\201\247\343\201\231", 14, {49406,163,234,104,4813,234,29290,121,42184,4813,100,4813,503,49407}},
    {"\360\237\230\200\360\237\216\211 \360\237\221\215\360\237\217\275", 5, {49406,12832,3986,43722,49407}},
    {"<|startoftext|>a cat<|endoftext|> dog", 7, {49406,49406,320,2368,49407,1929,49407}},
    {"<|STARTOFTEXT|> x", 4, {49406,49406,343,49407}},
    {"x'<|endoftext|>!", 6, {49406,343,262,49407,256,49407}},
    {"https://example.com/path\077q=1&x=y", 17, {49406,30901,12441,6228,269,2464,270,5035,286,336,284,272,261,343,284,344,49407}},
    {"a_b-c", 7, {49406,320,318,321,268,322,49407}},
    {"non\302\240breaking\343\200\200space", 5, {49406,3353,2755,2138,49407}},
    {"control\007chars zero\342\200\213width", 9, {49406,3366,451,540,864,5848,9844,23571,49407}},
    {"masterpiece, best quality, (ultra-detailed:1.2)", 16, {49406,12066,267,949,3027,267,263,8118,268,12609,281,272,269,273,264,49407}},
    {"\302\275 \302\262 \342\205\253 \342\221\240", 10, {49406,33613,41175,158,227,375,158,239,510,49407}},
    {"\342\204\246 \342\204\253 \342\204\252", 6, {49406,38065,127,354,330,49407}},
    {"\315\204 \340\245\230", 9, {49406,136,230,136,479,22067,3124,376,49407}},
    {"e\314\201\314\243", 7, {49406,157,118,373,136,479,49407}},
    {"\341\204\222\341\205\241\341\206\253", 4, {49406,15197,506,49407}},
    {"\360\235\220\200\360\235\220\201\360\235\220\202", 8, {49406,15889,222,15889,223,15889,480,49407}},
    {"'s's ''tis", 6, {49406,568,568,8445,7394,49407}},
    {"thequickbrownfoxjumpsoverthelazydog", 13, {49406,599,5969,6315,5007,5519,759,624,5403,854,88,1929,49407}},
};

static double tok_now_ms(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC); /* C11 */
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *tok_bpe_path(void) {
    static const char *const candidates[] = {"../shared/data/clip_bpe_simple_vocab_16e6.txt.gz",
                                             "/work/shared/data/clip_bpe_simple_vocab_16e6.txt.gz"};
    const char *env = getenv("SDIFF_CLIP_BPE");
    if (env) return env;
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(candidates[i], "rb");
        if (f) { fclose(f); return candidates[i]; }
    }
    return NULL;
}

/* ---------------------------------------------------------------- inflate */
static void tok_check_gz(const unsigned char *gz, size_t n, const char *want, size_t want_len) {
    unsigned char *out = NULL;
    size_t len = 0;
    sdiff_status st = sdiff__inflate_gzip(gz, n, 1 << 20, "test.gz", &out, &len);
    CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
    if (st != SDIFF_OK) return;
    CHECK(len == want_len);
    CHECK(len == want_len && memcmp(out, want, len) == 0);
    CHECK(out[len] == 0);
    sdiff__free(out);
}

SDIFF_TEST(inflate_round_trip) {
    char shortx[256], longx[4096];
    size_t ns = 0, nl = 0;
    for (int i = 0; i < 3; i++) {
        memcpy(shortx + ns, "the quick brown fox jumps over the lazy dog. ", 45);
        ns += 45;
    }
    for (int i = 0; i < 40; i++) shortx[ns++] = (char)i;
    for (int i = 0; i < 60; i++) nl += (size_t)snprintf(longx + nl, sizeof longx - nl, "line %d: the cat sat on the mat %d\n", i, i * i % 97);
    tok_check_gz(tok_gz_fixed, sizeof tok_gz_fixed, shortx, ns);
    tok_check_gz(tok_gz_stored, sizeof tok_gz_stored, shortx, ns);
    tok_check_gz(tok_gz_dynamic, sizeof tok_gz_dynamic, longx, nl);
    tok_check_gz(tok_gz_two_members, sizeof tok_gz_two_members, "first member\nsecond\n", 20);
    /* The output limit is enforced. */
    unsigned char *out = NULL;
    size_t len;
    CHECK(sdiff__inflate_gzip(tok_gz_dynamic, sizeof tok_gz_dynamic, 100, "t", &out, &len) == SDIFF_ERR_FORMAT);
}

SDIFF_TEST(inflate_malformed) {
    const unsigned char *const streams[3] = {tok_gz_fixed, tok_gz_stored, tok_gz_dynamic};
    const size_t sizes[3] = {sizeof tok_gz_fixed, sizeof tok_gz_stored, sizeof tok_gz_dynamic};
    unsigned char buf[512];
    for (int s = 0; s < 3; s++) {
        /* Every truncation is an error (the trailer's length and CRC catch
           the ones that end on a block boundary). */
        for (size_t cut = 0; cut < sizes[s]; cut++) {
            unsigned char *out = NULL;
            size_t len;
            memcpy(buf, streams[s], cut);
            sdiff_status st = sdiff__inflate_gzip(buf, cut, 1 << 20, "t.gz", &out, &len);
            CHECK_MSG(st == SDIFF_ERR_FORMAT, "stream %d cut at %zu: %d", s, cut, (int)st);
            CHECK(out == NULL);
        }
        /* Flipped bits: an error or (header fields gzip ignores, unused
           padding bits) the right data; never a crash under ASan. */
        for (size_t pos = 0; pos < sizes[s]; pos++)
            for (int bit = 0; bit < 8; bit += 3) {
                unsigned char *out = NULL;
                size_t len;
                memcpy(buf, streams[s], sizes[s]);
                buf[pos] ^= (unsigned char)(1 << bit);
                sdiff_status st = sdiff__inflate_gzip(buf, sizes[s], 1 << 20, "t.gz", &out, &len);
                CHECK(st == SDIFF_OK || st == SDIFF_ERR_FORMAT);
                if (st == SDIFF_OK) sdiff__free(out);
            }
    }
    /* Random garbage after a valid gzip header. */
    for (int it = 0; it < 2000; it++) {
        memcpy(buf, tok_gz_dynamic, 10);
        size_t n = 10 + (size_t)(it % 200);
        for (size_t i = 10; i < n; i++) buf[i] = (unsigned char)((test_randf() + 1.0f) * 127.9f);
        unsigned char *out = NULL;
        size_t len;
        sdiff_status st = sdiff__inflate_gzip(buf, n, 1 << 16, "t.gz", &out, &len);
        CHECK(st == SDIFF_OK || st == SDIFF_ERR_FORMAT);
        if (st == SDIFF_OK) sdiff__free(out);
    }
    unsigned char *out = NULL;
    size_t len;
    CHECK(sdiff__inflate_gzip((const unsigned char *)"", 0, 100, "t", &out, &len) == SDIFF_ERR_FORMAT);
    CHECK(strstr(sdiff_last_error(), "t: gzip:") != NULL);
}

/* -------------------------------------------------------------- tokenizer */
static int tok_check_cases(const sdiff__tokenizer *t, const char *source) {
    int bad = 0;
    for (size_t c = 0; c < sizeof tok_ref_cases / sizeof tok_ref_cases[0]; c++) {
        int32_t ids[77];
        sdiff_status st = sdiff__tokenize(t, tok_ref_cases[c].prompt, ids, 77);
        CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
        bool same = true;
        for (int i = 0; i < 77; i++)
            same = same && ids[i] == (i < tok_ref_cases[c].n ? tok_ref_cases[c].ids[i] : 49407);
        if (!same) {
            bad++;
            printf("    %s: ids differ for \"%s\":\n     got", source, tok_ref_cases[c].prompt);
            for (int i = 0; i < tok_ref_cases[c].n + 1 && i < 77; i++) printf(" %d", (int)ids[i]);
            printf("\n    want");
            for (int i = 0; i < tok_ref_cases[c].n; i++) printf(" %d", (int)tok_ref_cases[c].ids[i]);
            printf("\n");
        }
    }
    CHECK_MSG(bad == 0, "%d reference cases differ (%s)", bad, source);
    return bad;
}

/* Truncation, padding, errors: independent of the vocabulary source. */
static void tok_check_edges(sdiff__tokenizer *t) {
    int32_t ids[77];
    char prompt[1024] = "";
    for (int i = 0; i < 100; i++) strcat(prompt, "a ");
    CHECK(sdiff__tokenize(t, prompt, ids, 77) == SDIFF_OK);
    CHECK(ids[0] == 49406 && ids[1] == 320 && ids[75] == 320 && ids[76] == 49407);
    prompt[150] = 0; /* 75 "a": fills the 77 exactly */
    CHECK(sdiff__tokenize(t, prompt, ids, 77) == SDIFF_OK);
    CHECK(ids[75] == 320 && ids[76] == 49407);
    prompt[148] = 0; /* 74 "a": one pad */
    CHECK(sdiff__tokenize(t, prompt, ids, 77) == SDIFF_OK);
    CHECK(ids[74] == 320 && ids[75] == 49407 && ids[76] == 49407);
    /* A very long single word: truncated, no crash, bounded time. */
    static char word[20001];
    memset(word, 'x', 20000);
    word[20000] = 0;
    CHECK(sdiff__tokenize(t, word, ids, 77) == SDIFF_OK);
    CHECK(ids[0] == 49406 && ids[76] == 49407);
    /* Smaller max_len. */
    CHECK(sdiff__tokenize(t, "a photo of a cat", ids, 4) == SDIFF_OK);
    CHECK(ids[0] == 49406 && ids[1] == 320 && ids[2] == 1125 && ids[3] == 49407);
    CHECK(sdiff__tokenize(t, "a", ids, 1) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__tokenize(t, NULL, ids, 77) == SDIFF_OK && ids[1] == 49407);
    /* Invalid UTF-8 names the byte offset. */
    static const char *const bad[] = {"ab\xff", "abc\xc3", "\xc0\xaf", "x\xed\xa0\x80", "xy\xf4\x90\x80\x80", "\x80"};
    static const int offsets[] = {2, 3, 0, 1, 2, 0};
    for (int i = 0; i < 6; i++) {
        CHECK(sdiff__tokenize(t, bad[i], ids, 77) == SDIFF_ERR_INVALID_ARG);
        char want[64];
        snprintf(want, sizeof want, "at byte %d", offsets[i]);
        CHECK_MSG(strstr(sdiff_last_error(), want) != NULL, "%s", sdiff_last_error());
    }
    /* Speed: a prompt of ~77 tokens. */
    const char *p77 = "masterpiece, best quality, a highly detailed photograph of an old lighthouse on a rocky "
                      "coast at dusk, dramatic clouds, golden hour, volumetric light, 35mm film grain, sharp focus, "
                      "trending on artstation, by greg rutkowski and alphonse mucha, 8k uhd, cinematic, award winning, "
                      "intricate details, soft shadows, highly detailed skin texture, bokeh, depth of field";
    double t0 = tok_now_ms();
    int reps = 200;
    for (int i = 0; i < reps; i++) sdiff__tokenize(t, p77, ids, 77);
    double per = (tok_now_ms() - t0) / reps;
    printf("    tokenize of a 77-token prompt: %.3f ms\n", per);
    CHECK(ids[76] == 49407 && ids[75] != 49407);
    CHECK(per < 1.0);
}

static sdiff__tokenizer *tok_load_file_or_skip(void) {
    const char *path = tok_bpe_path();
    if (!path) { printf("    skipped: no clip_bpe_simple_vocab_16e6.txt.gz (set SDIFF_CLIP_BPE)\n"); return NULL; }
    sdiff__tokenizer *t = NULL;
    double t0 = tok_now_ms();
    sdiff_status st = sdiff__tokenizer_load_bpe_file(path, &t);
    printf("    loaded %s in %.1f ms\n", path, tok_now_ms() - t0);
    CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
    return t;
}

SDIFF_TEST(tokenizer_bpe_file) {
    sdiff__tokenizer *t = tok_load_file_or_skip();
    if (!t) return;
    CHECK(t->n_vocab == 49408 && t->n_merges == 48894);
    CHECK(t->bos == 49406 && t->eos == 49407 && t->pad == 49407);
    tok_check_cases(t, "bpe file");
    tok_check_edges(t);
    sdiff__tokenizer_free(t);
    /* Missing and malformed files. */
    CHECK(sdiff__tokenizer_load_bpe_file("/nonexistent/bpe.txt.gz", &t) == SDIFF_ERR_IO && t == NULL);
    const char *tmp = "/tmp/sdiff_test_bad_bpe.txt";
    FILE *f = fopen(tmp, "wb");
    if (f) {
        fputs("#version: 0.2\ni n\nt h\n", f);
        fclose(f);
        CHECK(sdiff__tokenizer_load_bpe_file(tmp, &t) == SDIFF_ERR_FORMAT && t == NULL);
        f = fopen(tmp, "wb");
        fwrite(tok_gz_dynamic, 1, sizeof tok_gz_dynamic - 3, f); /* truncated gzip */
        fclose(f);
        CHECK(sdiff__tokenizer_load_bpe_file(tmp, &t) == SDIFF_ERR_FORMAT && t == NULL);
        remove(tmp);
    }
}

/* Writes s as a JSON string. */
static void tok_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

/* A diffusers tokenizer/ folder written from a loaded vocabulary: vocab.json
   (with escapes, in reverse order), merges.txt with a version line and CRLF. */
static bool tok_write_dir(const sdiff__tokenizer *t, const char *dir, const char *pad, bool crlf) {
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    fputs("{", f);
    for (int32_t id = t->n_vocab - 1; id >= 0; id--) {
        tok_json_str(f, t->text + t->text_off[id]);
        fprintf(f, ": %d%s", (int)id, id ? ", " : "}\n");
    }
    fclose(f);
    /* merges in rank order */
    int32_t *order = (int32_t *)calloc((size_t)t->n_merges * 2, sizeof *order);
    for (uint32_t i = 0; i <= t->merge_mask; i++) {
        if (!t->merge_keys[i]) continue;
        uint64_t k = t->merge_keys[i] - 1;
        order[2 * t->merge_rank[i]] = (int32_t)(k >> 32);
        order[2 * t->merge_rank[i] + 1] = (int32_t)(k & 0xFFFFFFFFu);
    }
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    f = fopen(path, "wb");
    if (!f) { free(order); return false; }
    fprintf(f, "#version: 0.2%s", crlf ? "\r\n" : "\n");
    for (int32_t r = 0; r < t->n_merges; r++)
        fprintf(f, "%s %s%s", t->text + t->text_off[order[2 * r]], t->text + t->text_off[order[2 * r + 1]], crlf ? "\r\n" : "\n");
    fclose(f);
    free(order);
    if (pad) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        f = fopen(path, "wb");
        if (!f) return false;
        fprintf(f, "{\"bos_token\": {\"__type\": \"AddedToken\", \"content\": \"<|startoftext|>\", \"normalized\": true},\n"
                   " \"model_max_length\": 77, \"pad_token\": \"%s\"}\n", pad);
        fclose(f);
    }
    return true;
}

SDIFF_TEST(tokenizer_dir) {
    sdiff__tokenizer *ref = tok_load_file_or_skip();
    if (!ref) return;
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/sdiff_test_tok_%d", (int)getpid());
    if (!tok_write_dir(ref, dir, "!", true)) { printf("    skipped: cannot write %s\n", dir); sdiff__tokenizer_free(ref); return; }
    sdiff__tokenizer *t = NULL;
    double t0 = tok_now_ms();
    sdiff_status st = sdiff__tokenizer_load_dir(dir, &t);
    printf("    loaded vocab.json + merges.txt in %.1f ms\n", tok_now_ms() - t0);
    CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
    if (t) {
        CHECK(t->pad == 0); /* pad "!" from tokenizer_config.json */
        CHECK(t->n_vocab == 49408 && t->n_merges == 48894);
        CHECK(sdiff__tokenizer_set_pad(t, "<|endoftext|>") == SDIFF_OK);
        tok_check_cases(t, "tokenizer dir");
        sdiff__tokenizer_free(t);
    }
    /* A merge whose result is missing from vocab.json is an error. */
    char path[512];
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    FILE *f = fopen(path, "ab");
    if (f) { fputs("<|startoftext|> !\n", f); fclose(f); }
    t = NULL;
    CHECK(sdiff__tokenizer_load_dir(dir, &t) == SDIFF_ERR_FORMAT && t == NULL);
    CHECK_MSG(strstr(sdiff_last_error(), "merges.txt") != NULL, "%s", sdiff_last_error());
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    f = fopen(path, "wb");
    if (f) { fputs("{\"a\": 1,}", f); fclose(f); }
    CHECK(sdiff__tokenizer_load_dir(dir, &t) == SDIFF_ERR_FORMAT && t == NULL);
    CHECK_MSG(strstr(sdiff_last_error(), "vocab.json:1:9: trailing comma") != NULL, "%s", sdiff_last_error());
    remove(path);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    remove(path);
    rmdir(dir);
    CHECK(sdiff__tokenizer_load_dir(dir, &t) == SDIFF_ERR_IO && t == NULL);
    sdiff__tokenizer_free(ref);
}

SDIFF_TEST(tokenizer_builtin) {
    sdiff__tokenizer *t = NULL;
    double t0 = tok_now_ms();
    sdiff_status st = sdiff__tokenizer_load_builtin(&t);
#ifdef SDIFF_CLIP_VOCAB
    printf("    loaded the built-in vocabulary in %.1f ms\n", tok_now_ms() - t0);
    CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
    if (!t) return;
    CHECK(t->n_vocab == 49408 && t->n_merges == 48894);
    tok_check_cases(t, "built-in");
    tok_check_edges(t);
    /* Same vocabulary as the file, token for token. */
    sdiff__tokenizer *f = tok_load_file_or_skip();
    if (f) {
        int diff = 0;
        for (int32_t id = 0; id < 49408; id++) diff += strcmp(t->text + t->text_off[id], f->text + f->text_off[id]) != 0;
        CHECK(diff == 0);
        sdiff__tokenizer_free(f);
    }
    sdiff__tokenizer_free(t);
#else
    (void)t0;
    CHECK(st == SDIFF_ERR_UNSUPPORTED && t == NULL);
    printf("    skipped: SDIFF_CLIP_VOCAB not compiled in\n");
#endif
}

/* tests/fixtures/tokenizer_ids.json, from transformers (see the top). */
SDIFF_TEST(tokenizer_fixture) {
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer_ids.json", g_fixtures);
    size_t len = 0;
    char *text = test_read_file(path, &len);
    if (!text) { printf("    skipped: no fixture %s (run tools/gen_tokenizer_fixture.py)\n", path); return; }
    sdiff__tokenizer *t = tok_load_file_or_skip();
    sdiff__json *doc = NULL;
    if (t) {
        CHECK_MSG(sdiff__json_parse(text, len, path, &doc) == SDIFF_OK, "%s", sdiff_last_error());
        const sdiff__json *cases = sdiff__json_get(doc, "cases");
        CHECK(cases && cases->type == SDIFF__JSON_ARRAY && cases->count > 0);
        printf("    transformers %s\n", sdiff__json_string(doc, "transformers_version", "?"));
        int bad = 0;
        for (size_t c = 0; cases && c < cases->count; c++) {
            const sdiff__json *cs = &cases->items[c], *want = sdiff__json_get(cs, "ids");
            const char *prompt = sdiff__json_string(cs, "prompt", NULL);
            const char *pad = sdiff__json_string(cs, "pad_token", "<|endoftext|>");
            if (!prompt || !want || want->type != SDIFF__JSON_ARRAY || want->count != 77) { bad++; continue; }
            if (strlen(prompt) != sdiff__json_get(cs, "prompt")->string_len) continue; /* embedded NUL: C strings can't */
            int32_t ids[77];
            CHECK(sdiff__tokenizer_set_pad(t, pad) == SDIFF_OK);
            CHECK_MSG(sdiff__tokenize(t, prompt, ids, 77) == SDIFF_OK, "%s", sdiff_last_error());
            bool same = true;
            for (int i = 0; i < 77; i++) same = same && ids[i] == (int32_t)want->items[i].number;
            if (!same) {
                bad++;
                printf("    differs: \"%s\"\n     got", prompt);
                for (int i = 0; i < 77; i++) printf(" %d", (int)ids[i]);
                printf("\n    want");
                for (int i = 0; i < 77; i++) printf(" %d", (int)want->items[i].number);
                printf("\n");
            }
        }
        CHECK_MSG(bad == 0, "%d of %zu fixture cases differ", bad, cases ? cases->count : 0);
    }
    sdiff__json_free(doc);
    sdiff__tokenizer_free(t);
    free(text);
}
