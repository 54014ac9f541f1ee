/* Safetensors reader: valid files read back exactly; every malformed file is
   an SDIFF_ERR_FORMAT with a message, never a crash (run under ASan). */

/* Builds a safetensors image in memory: header JSON (padded to 8 bytes, as
   the reference writer does) + data. Caller frees. */
static unsigned char *st_build(const char *header, const void *data, size_t data_len, size_t *out_len) {
    size_t hl = strlen(header), padded = (hl + 7) & ~(size_t)7;
    unsigned char *buf = (unsigned char *)calloc(8 + padded + data_len + 1, 1);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, hl);
    memset(buf + 8 + hl, ' ', padded - hl);
    if (data_len) memcpy(buf + 8 + padded, data, data_len);
    *out_len = 8 + padded + data_len;
    return buf;
}
static sdiff_status st_try(const char *header, const void *data, size_t data_len) {
    size_t len;
    unsigned char *buf = st_build(header, data, data_len, &len);
    sdiff__safetensors st;
    sdiff_status s = sdiff__st_parse(buf, len, "test.safetensors", &st);
    if (s == SDIFF_OK) sdiff__st_free_tensors(&st);
    free(buf);
    return s;
}

SDIFF_TEST(safetensors_reads_f32_f16_bf16) {
    /* 1.5 and -2.25 in each dtype, plus an I64 (present in real CLIP files) */
    unsigned char data[8 + 4 + 4 + 8];
    float f[2] = {1.5f, -2.25f};
    uint16_t h[2] = {sdiff__f32_to_f16(1.5f), sdiff__f32_to_f16(-2.25f)};
    uint16_t b[2] = {sdiff__f32_to_bf16(1.5f), sdiff__f32_to_bf16(-2.25f)};
    int64_t id = 7;
    memcpy(data, f, 8); memcpy(data + 8, h, 4); memcpy(data + 12, b, 4); memcpy(data + 16, &id, 8);
    const char *hdr = "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]},"
                      "\"c\":{\"dtype\":\"BF16\",\"shape\":[2,1],\"data_offsets\":[12,16]},"
                      "\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]}}";
    size_t len;
    unsigned char *buf = st_build(hdr, data, sizeof data, &len);
    sdiff__safetensors st;
    CHECK(sdiff__st_parse(buf, len, "t", &st) == SDIFF_OK);
    CHECK(st.n == 4);
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        const sdiff__st_tensor *t = sdiff__st_find(&st, names[i]);
        CHECK(t != NULL);
        if (!t) continue;
        float v[2];
        sdiff__to_f32(v, t->data, (sdiff__dtype)t->dtype, 2);
        CHECK(v[0] == 1.5f && v[1] == -2.25f);
    }
    const sdiff__st_tensor *ids = sdiff__st_find(&st, "ids");
    CHECK(ids && ids->dtype == -1 && strcmp(ids->dtype_name, "I64") == 0);
    CHECK(sdiff__st_find(&st, "missing") == NULL);
    sdiff__st_free_tensors(&st);
    free(buf);
}

SDIFF_TEST(safetensors_rejects_malformed_headers) {
    float d[4] = {1, 2, 3, 4};
    static const char *const bad[] = {
        "[]",                                                                  /* not an object      */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,20]}}",   /* past the data      */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",   /* size mismatch      */
        "{\"a\":{\"dtype\":\"F99\",\"shape\":[4],\"data_offsets\":[0,16]}}",   /* unknown dtype      */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}",  /* negative dim       */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,16]}}", /* fractional dim     */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", /* overflow */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}",           /* 10 dims  */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        " \"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",  /* overlap            */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}",   /* end before begin   */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}",                             /* no offsets         */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}",      /* one offset         */
        "{\"a\":{\"dtype\":1,\"shape\":[4],\"data_offsets\":[0,16]}}",         /* dtype not a string */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
        " \"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}",    /* duplicate name     */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}",    /* truncated JSON     */
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-1e300,16]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sdiff_status s = st_try(bad[i], d, sizeof d);
        CHECK_MSG(s == SDIFF_ERR_FORMAT, "case %zu returned %d", i, (int)s);
        CHECK(sdiff_last_error()[0] != 0);
    }
    CHECK(st_try("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, sizeof d) == SDIFF_OK);
}

SDIFF_TEST(safetensors_rejects_truncation_and_bad_lengths) {
    float d[4] = {1, 2, 3, 4};
    size_t len;
    unsigned char *buf = st_build("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, sizeof d, &len);
    sdiff__safetensors st;
    for (size_t cut = 0; cut < len; cut++) { /* every prefix is an error */
        unsigned char *copy = (unsigned char *)malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        CHECK_MSG(sdiff__st_parse(copy, cut, "t", &st) == SDIFF_ERR_FORMAT, "prefix of %zu bytes accepted", cut);
        free(copy);
    }
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    CHECK(sdiff__st_parse(huge, sizeof huge, "t", &st) == SDIFF_ERR_FORMAT);
    CHECK(strstr(sdiff_last_error(), "header length") != NULL);
    free(buf);
}

SDIFF_TEST(safetensors_fuzz_mutations) {
    /* deterministic random byte flips, insertions of digits and truncations:
       whatever the parser says, it must not crash or leak (ASan checks) */
    unsigned char data[64];
    for (int i = 0; i < 64; i++) data[i] = (unsigned char)i;
    size_t len;
    unsigned char *base = st_build("{\"w\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[0,16]},"
                                   "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[16,24]},"
                                   "\"__metadata__\":{\"k\":\"v\"}}", data, sizeof data, &len);
    unsigned char *m = (unsigned char *)malloc(len);
    int accepted = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(m, base, len);
        int flips = 1 + (int)((test_randf() + 1) * 2);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)((test_randf() + 1) * 0.5f * (float)(len - 1));
            static const char pool[] = "0123456789{}[]\",:-.eE \\u\xff\x00";
            m[pos] = (k & 1) ? (unsigned char)pool[(size_t)((test_randf() + 1) * 0.5f * (sizeof pool - 2))]
                             : (unsigned char)((test_randf() + 1) * 127.5f);
        }
        size_t n = (iter % 7 == 0) ? (size_t)((test_randf() + 1) * 0.5f * (float)len) : len;
        sdiff__safetensors st;
        if (sdiff__st_parse(m, n, "fuzz", &st) == SDIFF_OK) {
            accepted++;
            for (size_t t = 0; t < st.n; t++) /* every accepted tensor lies inside the buffer */
                CHECK(st.tensors[t].data >= m && st.tensors[t].data + st.tensors[t].nbytes <= m + n);
            sdiff__st_free_tensors(&st);
        }
    }
    CHECK(accepted < 3000);
    free(m);
    free(base);
}

SDIFF_TEST(half_float_conversions_round_trip) {
    /* every f16 bit pattern survives f16 -> f32 -> f16 (NaN payloads aside) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sdiff__f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        CHECK_MSG(sdiff__f32_to_f16(f) == h, "0x%04x", (unsigned)h);
    }
    CHECK(sdiff__f32_to_f16(65520.0f) == 0x7c00);       /* rounds to inf */
    CHECK(sdiff__f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* ties to even */
    CHECK(sdiff__bf16_to_f32(sdiff__f32_to_bf16(3.0f)) == 3.0f);
}

/* The single-file key map at the real SD 1.5 layout (4 levels, attention in
   three, upsamplers after an attention at .2.conv) against an independent
   map: tools/gen_fixtures.py's, over every tensor of SD 1.5's UNet, VAE and
   CLIP text encoder (tests/fixtures/ldm_keys_sd15.json). */
SDIFF_TEST(ldm_key_map_matches_sd15_layout) {
    char path[512];
    snprintf(path, sizeof path, "%s/ldm_keys_sd15.json", g_fixtures);
    sdiff__json *j = NULL;
    CHECK_MSG(sdiff__json_load(path, &j) == SDIFF_OK, "%s", sdiff_last_error());
    if (!j) return;
    const sdiff__json *pairs = sdiff__json_get(j, "pairs");
    static const char *const parts[] = {"unet", "vae", "clip"};
    static const sdiff__keymap maps[] = {SDIFF__KEYS_LDM_UNET, SDIFF__KEYS_LDM_VAE, SDIFF__KEYS_LDM_CLIP};
    int checked = 0;
    for (int p = 0; p < 3; p++) {
        const sdiff__json *list = sdiff__json_get(pairs, parts[p]);
        sdiff__wsource src;
        memset(&src, 0, sizeof src);
        src.keymap = maps[p];
        src.ldm_layers_per_block = (int)sdiff__json_number(j, "layers_per_block", 2);
        src.ldm_n_blocks = p == 0 ? 4 : (int)sdiff__json_number(j, "vae_levels", 4);
        for (size_t i = 0; list && i < list->count; i++) {
            const char *from = list->items[i].items[0].string, *want = list->items[i].items[1].string;
            char cand[2][256];
            int n = sdiff__ldm_name(&src, from, cand);
            bool found = false;
            for (int c = 0; c < n; c++) found |= strcmp(cand[c], want) == 0;
            CHECK_MSG(found, "%s -> %s, want %s", from, n ? cand[0] : "(none)", want);
            checked++;
        }
    }
    CHECK(checked == 686 + 248 + 196);
    sdiff__json_free(j);
}
