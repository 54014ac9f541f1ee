/* test_json.c - the JSON reader: valid documents, every class of malformed
   input (each must be SDIFF_ERR_FORMAT, never a crash), error messages,
   locale independence, a mutation fuzz loop and the speed on a
   vocab.json-sized document. */
#include <locale.h>
#include <time.h>

static sdiff__json *json_ok(const char *text) {
    sdiff__json *j = NULL;
    sdiff_status st = sdiff__json_parse(text, strlen(text), "test.json", &j);
    CHECK_MSG(st == SDIFF_OK, "%s -> %s", text, sdiff_last_error());
    return j;
}

SDIFF_TEST(json_valid) {
    sdiff__json *j = json_ok(" {\"a\": 1, \"b\": [true, false, null, -0.5e1, 1E+2, 0, -0, 123456789012345678901234567890],"
                             " \"c\": {\"d\": \"x\"}, \"e\": [], \"f\": {}, \"a\": 2}\r\n\t");
    if (j) {
        CHECK(j->type == SDIFF__JSON_OBJECT && j->count == 6);
        CHECK(sdiff__json_number(j, "a", 0) == 2); /* duplicate: the last wins */
        const sdiff__json *b = sdiff__json_get(j, "b");
        CHECK(b && b->type == SDIFF__JSON_ARRAY && b->count == 8);
        if (b && b->count == 8) {
            CHECK(b->items[0].type == SDIFF__JSON_BOOL && b->items[0].boolean);
            CHECK(b->items[1].type == SDIFF__JSON_BOOL && !b->items[1].boolean);
            CHECK(b->items[2].type == SDIFF__JSON_NULL);
            CHECK(b->items[3].number == -5.0 && b->items[4].number == 100.0 && b->items[5].number == 0.0);
            CHECK(b->items[7].number == 1.2345678901234568e29);
        }
        CHECK(strcmp(sdiff__json_string(sdiff__json_get(j, "c"), "d", ""), "x") == 0);
        CHECK(sdiff__json_get(j, "e")->count == 0 && sdiff__json_get(j, "f")->type == SDIFF__JSON_OBJECT);
        CHECK(sdiff__json_get(j, "zz") == NULL && sdiff__json_get(b, "a") == NULL && sdiff__json_get(NULL, "a") == NULL);
        CHECK(sdiff__json_number(j, "c", 7.5) == 7.5 && sdiff__json_number(j, "zz", -1) == -1);
        CHECK(sdiff__json_bool(j, "a", true) == true && sdiff__json_string(j, "a", "fb")[0] == 'f');
    }
    sdiff__json_free(j);

    /* Escapes, surrogate pairs, \u0000, raw UTF-8. */
    j = json_ok("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\\ud83d\\ude00\", \"a\\u0000b\", \"caf\xc3\xa9 \xf0\x9f\x98\x80\", \"\"]");
    if (j) {
        CHECK(strcmp(j->items[0].string, "\"\\/\b\f\n\r\t") == 0 && j->items[0].string_len == 8);
        CHECK(strcmp(j->items[1].string, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == 0);
        CHECK(j->items[2].string_len == 3 && memcmp(j->items[2].string, "a\0b", 4) == 0);
        CHECK(strcmp(j->items[3].string, "caf\xc3\xa9 \xf0\x9f\x98\x80") == 0);
        CHECK(j->items[4].string_len == 0 && j->items[4].string[0] == 0);
    }
    sdiff__json_free(j);

    /* Python's json writes NaN, Infinity, -Infinity. */
    j = json_ok("{\"x\": NaN, \"y\": Infinity, \"z\": -Infinity, \"u\": 1e-400, \"v\": 1.7976931348623157e308}");
    if (j) {
        CHECK(isnan(sdiff__json_number(j, "x", 0)));
        CHECK(isinf(sdiff__json_number(j, "y", 0)) && sdiff__json_number(j, "y", 0) > 0);
        CHECK(isinf(sdiff__json_number(j, "z", 0)) && sdiff__json_number(j, "z", 0) < 0);
        CHECK(sdiff__json_number(j, "u", 1) == 0.0);
        CHECK(sdiff__json_number(j, "v", 0) == DBL_MAX);
    }
    sdiff__json_free(j);

    /* Scalars at the top, a byte order mark, exact decimal conversion. */
    j = json_ok("\xef\xbb\xbf 0.1");
    CHECK(j && j->number == 0.1);
    sdiff__json_free(j);
    j = json_ok("\"top\"");
    CHECK(j && j->type == SDIFF__JSON_STRING);
    sdiff__json_free(j);
    j = json_ok("[0.30000000000000004, 2.2250738585072014e-308, 4.9e-324, 9007199254740993, 1.00000000000000011102230246251565404236316680908203125]");
    if (j) {
        CHECK(j->items[0].number == 0.30000000000000004);
        CHECK(j->items[1].number == 2.2250738585072014e-308);
        CHECK(j->items[2].number == 4.9e-324);
        CHECK(j->items[3].number == 9007199254740992.0); /* round half to even */
        CHECK(j->items[4].number == 1.0);                /* exactly halfway: even */
    }
    sdiff__json_free(j);

    /* Depth 128 is fine, 129 is not. */
    char deep[600];
    memset(deep, '[', 128);
    memset(deep + 128, ']', 128);
    deep[256] = 0;
    j = json_ok(deep);
    sdiff__json_free(j);
}

SDIFF_TEST(json_malformed) {
    static const char *const bad[] = {
        "", " ", "\n\t", "{", "[", "[1,", "{\"a\"", "{\"a\":", "{\"a\":1", "\"abc", "\"a\\", "tru", "nul", "fals",
        "[1,]", "{\"a\":1,}", "[,1]", "{,}", "[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{1:2}", "{a:1}",
        "01", "-01", "00", "1.", ".5", "-", "+1", "1e", "1e+", "1.e5", "0x10", "1e999", "-1e999", ("1" "0000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"),
        "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud83d\\ud83d\"",
        "\"\t\"", "\"a\nb\"", "\"\x01\"",
        "\"\xff\"", "\"\xc3\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\x80\"",
        "\xff", "[1]x", "[1] [2]", "{} {}", "nan", "inf", "-NaN", "Infinit", "True", "NULL", "'a'", "[1,,2]",
        "/* c */ 1", "1 // c", "\xef\xbb", "\xef\xbb\xbf", "[\"a\" : 1]", "{\"a\": 1]", "[1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sdiff__json *j = (sdiff__json *)1;
        sdiff_status st = sdiff__json_parse(bad[i], strlen(bad[i]), "bad.json", &j);
        CHECK_MSG(st == SDIFF_ERR_FORMAT, "case %zu \"%s\" -> %d", i, bad[i], (int)st);
        CHECK(j == NULL);
        CHECK_MSG(strncmp(sdiff_last_error(), "bad.json:", 9) == 0, "%s", sdiff_last_error());
    }
    /* Embedded NUL bytes: inside a string, between tokens, at the end. */
    static const char nul1[] = "\"a\0b\"", nul2[] = "[1,\0 2]", nul3[] = "{}\0";
    sdiff__json *j = NULL;
    CHECK(sdiff__json_parse(nul1, sizeof nul1 - 1, "n", &j) == SDIFF_ERR_FORMAT);
    CHECK(sdiff__json_parse(nul2, sizeof nul2 - 1, "n", &j) == SDIFF_ERR_FORMAT);
    CHECK(sdiff__json_parse(nul3, sizeof nul3 - 1, "n", &j) == SDIFF_ERR_FORMAT);
    /* Only len bytes are read: a valid prefix of a longer buffer. */
    CHECK(sdiff__json_parse("[1,2]garbage", 5, "n", &j) == SDIFF_OK);
    sdiff__json_free(j);
    CHECK(sdiff__json_parse("[1,2]", 4, "n", &j) == SDIFF_ERR_FORMAT);

    /* Depth: 129 levels, and 10000 (no stack overflow). */
    size_t n = 10000;
    char *deep = (char *)malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = 0;
    CHECK(sdiff__json_parse(deep, 2 * n, "deep.json", &j) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strstr(sdiff_last_error(), "deep.json:1:129: nesting deeper than 128") != NULL, "%s", sdiff_last_error());
    memset(deep, '{', n);
    for (size_t i = 0; i < n; i++) deep[i] = (i % 5 == 0) ? '{' : ' ';
    CHECK(sdiff__json_parse(deep, n, "deep.json", &j) == SDIFF_ERR_FORMAT);
    for (size_t i = 0; i < n; i += 6) memcpy(deep + i, "{\"a\":", 5), deep[i + 5] = '[';
    CHECK(sdiff__json_parse(deep, n, "deep.json", &j) == SDIFF_ERR_FORMAT);
    free(deep);
}

SDIFF_TEST(json_error_messages) {
    sdiff__json *j = NULL;
    const char *doc = "{\n  \"a\": 1,\n  \"b\": [1, 2]   \"c\"\n}";
    CHECK(sdiff__json_parse(doc, strlen(doc), "unet/config.json", &j) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strcmp(sdiff_last_error(), "unet/config.json:3:17: expected ',' or '}'") == 0, "%s", sdiff_last_error());
    doc = "[1, 2,\n  \"\\ud800x\"]";
    CHECK(sdiff__json_parse(doc, strlen(doc), "x.json", &j) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strcmp(sdiff_last_error(), "x.json:2:4: lone high surrogate") == 0, "%s", sdiff_last_error());
    doc = "{\"k\": 012}";
    CHECK(sdiff__json_parse(doc, strlen(doc), "y.json", &j) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strcmp(sdiff_last_error(), "y.json:1:8: leading zero in number") == 0, "%s", sdiff_last_error());
    doc = "[1] 2";
    CHECK(sdiff__json_parse(doc, strlen(doc), "z.json", &j) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strcmp(sdiff_last_error(), "z.json:1:5: unexpected data after the document") == 0, "%s", sdiff_last_error());
    CHECK(sdiff__json_parse("", 0, "e.json", &j) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strcmp(sdiff_last_error(), "e.json:1:1: unexpected end of input, expected a value") == 0, "%s", sdiff_last_error());
}

/* strtod reads "1,5" in a German locale; the parser must not care. */
SDIFF_TEST(json_locale) {
    const char *loc = setlocale(LC_NUMERIC, "de_DE.UTF-8");
    if (!loc) loc = setlocale(LC_NUMERIC, "fr_FR.UTF-8");
    if (!loc) { printf("    skipped: no comma-decimal locale installed\n"); return; }
    sdiff__json *j = json_ok("[1.5, 2.25e1, 0.000123456789012345678901234567890]");
    if (j) {
        CHECK(j->items[0].number == 1.5 && j->items[1].number == 22.5);
        CHECK(j->items[2].number == 0.000123456789012345678901234567890);
    }
    sdiff__json_free(j);
    setlocale(LC_NUMERIC, "C");
}

static uint64_t g_json_fuzz_rng = 12345;
static uint32_t json_fuzz_next(void) {
    g_json_fuzz_rng ^= g_json_fuzz_rng << 13;
    g_json_fuzz_rng ^= g_json_fuzz_rng >> 7;
    g_json_fuzz_rng ^= g_json_fuzz_rng << 17;
    return (uint32_t)(g_json_fuzz_rng >> 16);
}

/* Random mutations of valid documents: each must parse or fail cleanly. */
SDIFF_TEST(json_fuzz) {
    static const char *const seeds[] = {
        ("{\"_class_name\": \"UNet2DConditionModel\", \"block_out_channels\": [320, 640, 1280, 1280], \"sample_size\": 64,"
         " \"cross_attention_dim\": 768, \"upcast\": false, \"act\": null, \"eps\": 1e-05, \"t\": NaN}"),
        "[\"\\u00e9\\ud83d\\ude00\", \"a\\\"b\\\\c\", -0.5E-3, [[[]]], {\"\": {\"x\": [true]}}]",
        "{\"caf\xc3\xa9\": \"\xf0\x9f\x98\x80\", \"k\": Infinity, \"m\": -Infinity, \"n\": 12345678901234567890}",
    };
    static const char tokens[] = "{}[]\":,\\u0123456789eE+-.tfnNI \n\x80\xc3\xed\xf0\xff";
    char buf[512];
    int ok = 0, err = 0;
    for (int it = 0; it < 6000; it++) {
        const char *seed = seeds[it % 3];
        size_t n = strlen(seed);
        memcpy(buf, seed, n);
        int muts = 1 + (int)(json_fuzz_next() % 4);
        for (int m = 0; m < muts; m++) {
            uint32_t r = json_fuzz_next();
            size_t pos = n ? r % n : 0;
            switch ((r >> 20) % 4) {
            case 0: buf[pos] = tokens[(r >> 8) % (sizeof tokens - 1)]; break;                 /* replace */
            case 1: if (n > 1) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;  /* delete */
            case 2: if (n < sizeof buf - 1) { memmove(buf + pos + 1, buf + pos, n - pos); buf[pos] = tokens[(r >> 8) % (sizeof tokens - 1)]; n++; } break;
            default: n = pos; break;                                                            /* truncate */
            }
        }
        sdiff__json *j = NULL;
        sdiff_status st = sdiff__json_parse(buf, n, "fuzz.json", &j);
        CHECK(st == SDIFF_OK || st == SDIFF_ERR_FORMAT);
        CHECK((st == SDIFF_OK) == (j != NULL));
        if (st == SDIFF_OK) ok++;
        else err++;
        sdiff__json_free(j);
    }
    printf("    %d parsed, %d rejected\n", ok, err);
}

/* A vocab.json-sized object (49408 members, ~1.6 MB, escapes in keys). */
SDIFF_TEST(json_speed) {
    size_t cap = 4 << 20, n = 0;
    char *doc = (char *)malloc(cap);
    doc[n++] = '{';
    for (int i = 0; i < 49408; i++)
        n += (size_t)snprintf(doc + n, cap - n, "%s\"tok\\u00e9%d\\\"ab\\\\cdef</w>\": %d", i ? ", " : "", i, i);
    doc[n++] = '}';
    sdiff__json *j = NULL;
    struct timespec a, b;
    timespec_get(&a, TIME_UTC);
    sdiff_status st = sdiff__json_parse(doc, n, "vocab.json", &j);
    timespec_get(&b, TIME_UTC);
    double ms = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
    printf("    %.2f MB, %zu members in %.1f ms\n", n / 1e6, j ? j->count : 0, ms);
    CHECK(st == SDIFF_OK && j && j->count == 49408);
    if (j) {
        CHECK(strcmp(j->keys[7], "tok\xc3\xa9" "7\"ab\\cdef</w>") == 0 && j->items[49407].number == 49407);
    }
#if defined(__SANITIZE_ADDRESS__)
    const double limit = 500;
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
    const double limit = 500;
#  else
    const double limit = 50;
#  endif
#else
    const double limit = 50;
#endif
    CHECK_MSG(ms < limit, "%.1f ms", ms);
    sdiff__json_free(j);
    free(doc);
}
