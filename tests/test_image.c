/* test_image.c - PNG writing (pixels and the "parameters" text chunk), image
   loading and its errors, sdiff_gen_params_describe. Temporary files go to
   /tmp under unique names and are removed. */
#include <stdint.h>
#include <time.h>

/* A fresh, unused file name under /tmp. C11's exclusive "wbx" mode reserves
   it the way mkstemp does, without needing POSIX declarations. */
static int timg_make_temp(char *path, size_t size, const char *suffix) {
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned long long salt = (unsigned long long)(uintptr_t)&counter ^ ((unsigned long long)time(NULL) << 20);
        g_test_rng ^= salt;
        snprintf(path, size, "/tmp/sdiff-test-%u-%08x%s", ++counter, (unsigned)((test_randf() + 1.0f) * 2e9f), suffix);
        FILE *f = fopen(path, "wbx");
        if (f) { fclose(f); return 1; }
    }
    return 0;
}

static int timg_write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* An independent CRC-32 (table-driven, unlike the library's bitwise one). */
static uint32_t timg_crc32(const unsigned char *p, size_t n) {
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t timg_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

typedef struct timg_chunk { char type[5]; const unsigned char *data; uint32_t len; } timg_chunk;

/* Splits a PNG into chunks, checking the signature, every length and every
   CRC. Returns the number of chunks, or -1 when the file is malformed. */
static int timg_parse_png(const unsigned char *png, size_t n, timg_chunk *chunks, int max_chunks) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 8 || memcmp(png, sig, 8) != 0) return -1;
    size_t pos = 8;
    int count = 0;
    while (pos < n) {
        if (n - pos < 12 || count >= max_chunks) return -1;
        uint32_t len = timg_be32(png + pos);
        if (len > n - pos - 12) return -1;
        uint32_t crc = timg_be32(png + pos + 8 + len);
        if (crc != timg_crc32(png + pos + 4, 4 + (size_t)len)) return -1;
        memcpy(chunks[count].type, png + pos + 4, 4);
        chunks[count].type[4] = 0;
        chunks[count].data = png + pos + 8;
        chunks[count].len = len;
        count++;
        pos += 12 + (size_t)len;
    }
    return count;
}

static sdiff_image timg_random_image(int w, int h, int channels) {
    sdiff_image img = {w, h, channels, (uint8_t *)malloc((size_t)w * h * channels)};
    for (size_t i = 0; i < (size_t)w * h * channels; i++) img.data[i] = (uint8_t)((test_randf() + 1.0f) * 127.9f);
    return img;
}

SDIFF_TEST(image_crc32_reference) {
    /* The check value of CRC-32/ISO-HDLC, which PNG uses. */
    CHECK(timg_crc32((const unsigned char *)"123456789", 9) == 0xCBF43926u);
}

/* The float -> byte rounding of decoded images: half to even, as lrintf (and numpy's round). Every
   tie k + 0.5 and its neighbours, the ends, and random values in [0, 255]. */
SDIFF_TEST(image_round_u8) {
    int bad = 0;
    for (int k = 0; k <= 255; k++) {
        const float c[5] = {(float)k, k + 0.5f, nextafterf(k + 0.5f, 0.0f), nextafterf(k + 0.5f, 256.0f),
                            nextafterf((float)k, 256.0f)};
        for (int j = 0; j < 5; j++)
            if (c[j] <= 255.0f && sdiff__round_u8(c[j]) != (uint8_t)lrintf(c[j])) bad++;
    }
    for (int i = 0; i < 1000000; i++) {
        const float x = (test_randf() + 1.0f) * 127.5f;
        if (x >= 0.0f && x <= 255.0f && sdiff__round_u8(x) != (uint8_t)lrintf(x)) bad++;
    }
    CHECK_MSG(bad == 0, "%d values rounded differently from lrintf", bad);
    CHECK(sdiff__round_u8(0.0f) == 0 && sdiff__round_u8(255.0f) == 255 && sdiff__round_u8(0.5f) == 0 &&
          sdiff__round_u8(1.5f) == 2 && sdiff__round_u8(254.5f) == 254);
}

/* A decoded image's value -> byte (the backends' download_image): diffusers' (x/2 + 0.5) clamped, * 255,
   rounded half to even; NaN gives 0. */
SDIFF_TEST(image_byte_from_vae_value) {
    CHECK(sdiff__image_byte(-1.0f) == 0 && sdiff__image_byte(1.0f) == 255 && sdiff__image_byte(0.0f) == 128);
    CHECK(sdiff__image_byte(-7.0f) == 0 && sdiff__image_byte(3.0f) == 255 && sdiff__image_byte(NAN) == 0);
    CHECK(sdiff__image_byte(-INFINITY) == 0 && sdiff__image_byte(INFINITY) == 255);
    for (int i = 0; i < 100000; i++) {
        const float x = test_randf() * 1.2f;
        float v = x / 2.0f + 0.5f;
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        CHECK_MSG(sdiff__image_byte(x) == (uint8_t)lrintf(v * 255.0f), "x = %.9g", (double)x);
        if (g_test_failed) break;
    }
}

SDIFF_TEST(image_png_roundtrip) {
    char path[256];
    CHECK(timg_make_temp(path, sizeof path, ".png"));
    const int channels[] = {3, 4};
    for (int ci = 0; ci < 2; ci++) {
        /* odd sizes catch stride mistakes */
        sdiff_image img = timg_random_image(37, 23, channels[ci]);
        CHECK(sdiff_image_write_png(&img, path, "a prompt\nSteps: 1") == SDIFF_OK);
        sdiff_image back;
        sdiff_status st = sdiff_image_load(path, &back);
        CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
        if (st == SDIFF_OK) {
            CHECK(back.width == 37 && back.height == 23 && back.channels == 3);
            int same = 1;
            for (size_t p = 0; p < (size_t)37 * 23; p++)
                for (int c = 0; c < 3; c++)
                    if (back.data[p * 3 + c] != img.data[p * channels[ci] + c]) same = 0;
            CHECK_MSG(same, "pixels differ after a round trip (%d channels)", channels[ci]);
        }
        sdiff_image_free(&back);
        CHECK(back.data == NULL);
        free(img.data);
    }
    remove(path);
}

/* Writes img with `text`, then returns the chunk list of the file. */
static int timg_write_and_parse(const char *path, const char *text, unsigned char **file, timg_chunk *chunks,
                                int max_chunks) {
    sdiff_image img = timg_random_image(16, 8, 3);
    sdiff_status st = sdiff_image_write_png(&img, path, text);
    free(img.data);
    if (st != SDIFF_OK) return -2;
    size_t n = 0;
    *file = (unsigned char *)test_read_file(path, &n);
    if (!*file) return -3;
    return timg_parse_png(*file, n, chunks, max_chunks);
}

SDIFF_TEST(image_png_text_chunk) {
    char path[256];
    CHECK(timg_make_temp(path, sizeof path, ".png"));
    timg_chunk ch[64];
    unsigned char *file = NULL;

    /* ASCII -> tEXt, right after IHDR, "parameters" NUL text */
    const char *text = "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 30, Seed: 42";
    int n = timg_write_and_parse(path, text, &file, ch, 64);
    CHECK_MSG(n >= 4, "chunk parse/CRC failed (%d)", n);
    if (n >= 4) {
        CHECK(strcmp(ch[0].type, "IHDR") == 0);
        CHECK(strcmp(ch[1].type, "tEXt") == 0);
        CHECK(strcmp(ch[n - 1].type, "IEND") == 0);
        size_t want = sizeof "parameters" + strlen(text);
        CHECK(ch[1].len == want);
        if (ch[1].len == want) {
            CHECK(memcmp(ch[1].data, "parameters\0", 11) == 0);
            CHECK(memcmp(ch[1].data + 11, text, strlen(text)) == 0);
        }
        int text_chunks = 0;
        for (int i = 0; i < n; i++) text_chunks += !strcmp(ch[i].type, "tEXt") || !strcmp(ch[i].type, "iTXt");
        CHECK(text_chunks == 1);
    }
    free(file);
    file = NULL;

    /* non-ASCII UTF-8 -> iTXt: key NUL, flag 0, method 0, "" NUL, "" NUL, text */
    const char *utf8 = "caf\xC3\xA9 au lait, \xE2\x98\x95, \xF0\x9F\x8C\x8A";
    n = timg_write_and_parse(path, utf8, &file, ch, 64);
    CHECK_MSG(n >= 4, "chunk parse/CRC failed (%d)", n);
    if (n >= 4) {
        CHECK(strcmp(ch[1].type, "iTXt") == 0);
        size_t want = sizeof "parameters" + 4 + strlen(utf8);
        CHECK(ch[1].len == want);
        if (ch[1].len == want) {
            CHECK(memcmp(ch[1].data, "parameters\0\0\0\0\0", 15) == 0);
            CHECK(memcmp(ch[1].data + 15, utf8, strlen(utf8)) == 0);
        }
    }
    free(file);
    file = NULL;

    /* no text -> no text chunk, and still a valid PNG */
    n = timg_write_and_parse(path, NULL, &file, ch, 64);
    CHECK(n >= 3);
    for (int i = 0; i < n; i++) CHECK(strcmp(ch[i].type, "tEXt") != 0 && strcmp(ch[i].type, "iTXt") != 0);
    free(file);
    file = NULL;

    /* empty text is still stored: the caller asked for the chunk */
    n = timg_write_and_parse(path, "", &file, ch, 64);
    CHECK(n >= 4 && strcmp(ch[1].type, "tEXt") == 0 && ch[1].len == sizeof "parameters");
    free(file);
    remove(path);
}

SDIFF_TEST(image_write_errors) {
    sdiff_image img = timg_random_image(8, 8, 3);
    const char *bad_dir = "/tmp/sdiff-no-such-dir-7f3a/out.png";
    CHECK(sdiff_image_write_png(&img, bad_dir, NULL) == SDIFF_ERR_IO);
    CHECK_MSG(strstr(sdiff_last_error(), bad_dir) != NULL, "message lacks the path: %s", sdiff_last_error());

    char path[256];
    CHECK(timg_make_temp(path, sizeof path, ".png"));
    /* invalid UTF-8 (a lone continuation byte, an overlong NUL) */
    CHECK(sdiff_image_write_png(&img, path, "bad \x80 byte") == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff_image_write_png(&img, path, "overlong \xC0\x80") == SDIFF_ERR_INVALID_ARG);
    sdiff_image bad = img;
    bad.channels = 5;
    CHECK(sdiff_image_write_png(&bad, path, NULL) == SDIFF_ERR_INVALID_ARG);
    bad = img;
    bad.width = 0;
    CHECK(sdiff_image_write_png(&bad, path, NULL) == SDIFF_ERR_INVALID_ARG);
    bad = img;
    bad.data = NULL;
    CHECK(sdiff_image_write_png(&bad, path, NULL) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff_image_write_png(NULL, path, NULL) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff_image_write_png(&img, NULL, NULL) == SDIFF_ERR_INVALID_ARG);
    free(img.data);
    remove(path);
}

SDIFF_TEST(image_load_errors) {
    sdiff_image out;
    const char *missing = "/tmp/sdiff-test-definitely-missing-91c2.png";
    CHECK(sdiff_image_load(missing, &out) == SDIFF_ERR_IO);
    CHECK_MSG(strstr(sdiff_last_error(), missing) != NULL, "message lacks the path: %s", sdiff_last_error());
    CHECK(out.data == NULL && out.width == 0);

    char path[256];
    CHECK(timg_make_temp(path, sizeof path, ".png"));

    /* garbage */
    const char garbage[] = "this is not an image, just some text that goes on for a while";
    CHECK(timg_write_bytes(path, garbage, sizeof garbage));
    CHECK(sdiff_image_load(path, &out) == SDIFF_ERR_FORMAT);
    CHECK_MSG(strstr(sdiff_last_error(), path) != NULL, "message lacks the path: %s", sdiff_last_error());
    CHECK(out.data == NULL);

    /* empty file */
    CHECK(timg_write_bytes(path, "", 0));
    CHECK(sdiff_image_load(path, &out) == SDIFF_ERR_FORMAT);

    /* a real PNG cut short: header intact, pixel data missing */
    sdiff_image img = timg_random_image(64, 64, 3);
    CHECK(sdiff_image_write_png(&img, path, NULL) == SDIFF_OK);
    free(img.data);
    size_t n = 0;
    char *png = test_read_file(path, &n);
    CHECK(png != NULL && n > 200);
    if (png && n > 200) {
        CHECK(timg_write_bytes(path, png, n / 2));
        sdiff_status st = sdiff_image_load(path, &out);
        CHECK_MSG(st == SDIFF_ERR_FORMAT, "truncated PNG gave %d (%s)", (int)st, sdiff_last_error());
        CHECK(out.data == NULL);
        sdiff_image_free(&out);
    }
    free(png);

    /* a well-formed header claiming an absurd size is refused before decoding */
    unsigned char huge[8 + 25];
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(huge, sig, 8);
    const unsigned char ihdr[4 + 4 + 13] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x4E, 0x20, /* 20000 */
                                            0, 0, 0x4E, 0x20, 8, 2, 0, 0, 0};
    memcpy(huge + 8, ihdr, sizeof ihdr);
    uint32_t crc = timg_crc32(ihdr + 4, 17);
    unsigned char crc_be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16), (unsigned char)(crc >> 8),
                               (unsigned char)crc};
    memcpy(huge + 8 + 21, crc_be, 4);
    CHECK(timg_write_bytes(path, huge, sizeof huge));
    sdiff_status st = sdiff_image_load(path, &out);
    CHECK_MSG(st == SDIFF_ERR_UNSUPPORTED || st == SDIFF_ERR_FORMAT, "20000x20000 header gave %d (%s)", (int)st,
              sdiff_last_error());
    CHECK(out.data == NULL);

    CHECK(sdiff_image_load(NULL, &out) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff_image_load(path, NULL) == SDIFF_ERR_INVALID_ARG);
    remove(path);

    sdiff_image_free(NULL);      /* both are documented no-ops */
    sdiff_image empty = {0, 0, 0, NULL};
    sdiff_image_free(&empty);
}

static sdiff_gen_params timg_params(void) {
    sdiff_gen_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "a lighthouse at dusk";
    p.negative_prompt = "blurry";
    p.width = 512;
    p.height = 768;
    p.steps = 30;
    p.cfg_scale = 7.5f;
    p.seed = 42;
    p.sampler = SDIFF_SAMPLER_EULER_A;
    p.batch = 2;
    p.clip_skip = 2;
    return p;
}

SDIFF_TEST(image_describe) {
    sdiff_gen_params p = timg_params();
    char buf[1024], want[1024];
    CHECK(sdiff_gen_params_describe(&p, buf, sizeof buf) == SDIFF_OK);
    snprintf(want, sizeof want,
             "a lighthouse at dusk\nNegative prompt: blurry\nSteps: 30, Sampler: %s, CFG scale: 7.5, Seed: 42, "
             "Size: 512x768, Clip skip: 2, Batch: 2, Generator: sdiff " SDIFF_VERSION_STRING,
             sdiff_sampler_name(SDIFF_SAMPLER_EULER_A));
    CHECK_MSG(strcmp(buf, want) == 0, "got\n%s\nwant\n%s", buf, want);

    /* img2img adds the strength; no negative prompt, no clip skip, a 64-bit seed */
    sdiff_image init = {512, 768, 3, NULL};
    p.init_image = &init;
    p.strength = 0.6f;
    p.negative_prompt = "";
    p.clip_skip = 1;
    p.cfg_scale = 7.0f;
    p.seed = 18446744073709551615ull;
    p.batch = 0;
    CHECK(sdiff_gen_params_describe(&p, buf, sizeof buf) == SDIFF_OK);
    snprintf(want, sizeof want,
             "a lighthouse at dusk\nSteps: 30, Sampler: %s, CFG scale: 7, Seed: 18446744073709551615, "
             "Size: 512x768, Denoising strength: 0.6, Batch: 1, Generator: sdiff " SDIFF_VERSION_STRING,
             sdiff_sampler_name(SDIFF_SAMPLER_EULER_A));
    CHECK_MSG(strcmp(buf, want) == 0, "got\n%s\nwant\n%s", buf, want);

    CHECK(sdiff_gen_params_describe(NULL, buf, sizeof buf) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff_gen_params_describe(&p, NULL, 10) == SDIFF_ERR_INVALID_ARG);
}

SDIFF_TEST(image_describe_truncation) {
    sdiff_gen_params p = timg_params();
    char full[1024];
    CHECK(sdiff_gen_params_describe(&p, full, sizeof full) == SDIFF_OK);
    size_t len = strlen(full);
    /* Every size too small fails, writes nothing past `size`, and leaves a
       terminated (empty) string; len + 1 is exactly enough. */
    char buf[1024 + 16];
    for (size_t size = 1; size <= len + 1; size++) {
        memset(buf, 'X', sizeof buf);
        sdiff_status st = sdiff_gen_params_describe(&p, buf, size);
        if (size <= len) {
            CHECK_MSG(st == SDIFF_ERR_INVALID_ARG, "size %zu of %zu: %d", size, len + 1, (int)st);
            CHECK(buf[0] == 0);
        } else {
            CHECK(st == SDIFF_OK && strcmp(buf, full) == 0);
        }
        int clean = 1;
        for (size_t i = size; i < sizeof buf; i++) clean &= buf[i] == 'X';
        CHECK_MSG(clean, "wrote past a buffer of %zu bytes", size);
        if (!clean || (size <= len && st != SDIFF_ERR_INVALID_ARG)) break;
    }
    memset(buf, 'X', sizeof buf);
    CHECK(sdiff_gen_params_describe(&p, buf, 0) == SDIFF_ERR_INVALID_ARG);
    CHECK(buf[0] == 'X');
}
