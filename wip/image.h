/* >>image ==================================================================
   Images: PNG writing and image loading (stb), generation parameters as text

   stb, and how it gets linked. sdiff uses stb_image (loading) and
   stb_image_write (PNG encoding) from the system's stb headers: Debian and
   Ubuntu's libstb-dev put them in /usr/include/stb/, so the default is
   <stb/stb_image.h>; define SDIFF_STB_IMAGE_H / SDIFF_STB_IMAGE_WRITE_H to
   another header name (e.g. -DSDIFF_STB_IMAGE_H='"third_party/stb_image.h"')
   where they live elsewhere.

   By default this file compiles a private copy of both into the
   implementation, with every stb function `static` (STB_IMAGE_STATIC,
   STB_IMAGE_WRITE_STATIC). That keeps embedding to one #include with no
   extra library on the link line, and a program that also uses stb itself
   (its own copy, or Debian's -lstb) still links: static functions cannot
   collide with anyone's symbols. The cost is one more copy of the decoder
   in the binary.
   To share one stb instead, include stb_image.h and stb_image_write.h
   before the sdiff implementation in the same file; sdiff then uses those
   declarations and builds no copy, and the program supplies the
   implementation once (STB_IMAGE_IMPLEMENTATION in one file, or link
   Debian's packaged -lstb).

   The private copy allocates through SDIFF_MALLOC/SDIFF_REALLOC/SDIFF_FREE,
   so a replaced allocator covers image decoding too.
   ========================================================================= */

/* The largest width or height sdiff reads or writes. A Stable Diffusion
   image is far smaller; the limit keeps a hostile header (a PNG claiming
   100000 x 100000) from asking for gigabytes, and keeps stb_image_write's
   int-sized row arithmetic ((w*4+1)*h) well inside INT_MAX. */
#define SDIFF__IMAGE_MAX_SIDE 16384

SDIFF_API void sdiff_image_free(sdiff_image *image) {
    if (!image) return;
    sdiff__free(image->data);
    image->data = NULL;
    image->width = image->height = image->channels = 0;
}

#ifndef SDIFF_NO_STB

#if !defined(STBI_INCLUDE_STB_IMAGE_H)
#  define STB_IMAGE_STATIC
#  define STB_IMAGE_IMPLEMENTATION
#  define STBI_FAILURE_USERMSG      /* "Corrupt PNG" rather than "bad zlib" */
#  ifndef STBI_MALLOC
#    define STBI_MALLOC(sz) SDIFF_MALLOC(sz)
#    define STBI_REALLOC(p, sz) SDIFF_REALLOC(p, sz)
#    define STBI_FREE(p) SDIFF_FREE(p)
#  endif
#  ifndef STBI_ASSERT
#    define STBI_ASSERT(x) SDIFF_ASSERT(x)
#  endif
#  define SDIFF__STB_IMAGE_PRIVATE 1
/* stb_image 2.27 (the one Debian 12 ships) declares
   stbi_set_unpremultiply_on_load_thread but defines it as
   stbi__unpremultiply_on_load_thread. Made static, that is a function
   declared and never defined, which GCC reports at the end of the file,
   past any diagnostic pragma. Giving both spellings one private name makes
   2.27 define what it declares; later versions (fixed) never use the
   misspelt one. */
#  define stbi_set_unpremultiply_on_load_thread sdiff__stbi_unpremultiply_on_load_thread
#  define stbi__unpremultiply_on_load_thread sdiff__stbi_unpremultiply_on_load_thread
#endif
#if !defined(INCLUDE_STB_IMAGE_WRITE_H)
#  define STB_IMAGE_WRITE_STATIC
#  define STB_IMAGE_WRITE_IMPLEMENTATION
#  ifndef STBIW_MALLOC
#    define STBIW_MALLOC(sz) SDIFF_MALLOC(sz)
#    define STBIW_REALLOC(p, sz) SDIFF_REALLOC(p, sz)
#    define STBIW_FREE(p) SDIFF_FREE(p)
#  endif
#  ifndef STBIW_ASSERT
#    define STBIW_ASSERT(x) SDIFF_ASSERT(x)
#  endif
#  define SDIFF__STB_WRITE_PRIVATE 1
#endif

/* A static copy of stb has many functions sdiff never calls (HDR loading,
   BMP writing, ...), and some stb versions warn under -Wall -Wextra of
   their own; those are not warnings of the program that includes sdiff. */
#if defined(__clang__)
#  pragma clang diagnostic push
#  pragma clang diagnostic ignored "-Wunused-function"
#  pragma clang diagnostic ignored "-Wmissing-field-initializers"
#  if __has_warning("-Wunused-but-set-variable")
#    pragma clang diagnostic ignored "-Wunused-but-set-variable"
#  endif
#elif defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wunused-function"
#  pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#  pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#ifdef SDIFF_STB_IMAGE_H
#  include SDIFF_STB_IMAGE_H
#else
#  include <stb/stb_image.h>
#endif
#ifdef SDIFF_STB_IMAGE_WRITE_H
#  include SDIFF_STB_IMAGE_WRITE_H
#else
#  include <stb/stb_image_write.h>
#endif
#if defined(__clang__)
#  pragma clang diagnostic pop
#elif defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif
#ifdef SDIFF__STB_IMAGE_PRIVATE
#  undef stbi_set_unpremultiply_on_load_thread
#  undef stbi__unpremultiply_on_load_thread
#endif

#ifndef SDIFF__STB_WRITE_PRIVATE
/* stb_image_write.h declares stbi_write_png_to_mem only in its
   implementation part; with a shared stb it has to be declared here. */
STBIWDEF unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x, int y, int n,
                                              int *out_len);
#endif
/* stbi_write_png_to_mem's buffer comes from STBIW_MALLOC: the private copy's
   is SDIFF_MALLOC; a shared stb built with its defaults uses malloc. */
#ifdef SDIFF__STB_WRITE_PRIVATE
#  define SDIFF__STBIW_FREE(p) SDIFF_FREE(p)
#else
#  define SDIFF__STBIW_FREE(p) free(p)
#endif

SDIFF_API sdiff_status sdiff_image_load(const char *path, sdiff_image *out_image) {
    if (out_image) memset(out_image, 0, sizeof *out_image);
    if (!path || !out_image) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_load: path and out_image must not be NULL");
    /* Opening the file here, not in stbi_load, tells "cannot read" (errno)
       apart from "not an image" (stbi_failure_reason). */
    FILE *f = fopen(path, "rb");
    if (!f) return sdiff__err(SDIFF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int w = 0, h = 0, comp = 0;
    if (!stbi_info_from_file(f, &w, &h, &comp)) {
        int io_error = ferror(f);
        int saved_errno = errno;
        fclose(f);
        if (io_error) return sdiff__err(SDIFF_ERR_IO, "%s: read error: %s", path, strerror(saved_errno));
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: not a readable image (%s)", path, stbi_failure_reason());
    }
    /* Checked before decoding, so a huge header costs nothing. */
    if (w < 1 || h < 1 || w > SDIFF__IMAGE_MAX_SIDE || h > SDIFF__IMAGE_MAX_SIDE) {
        fclose(f);
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: image is %dx%d; sdiff reads images up to %dx%d", path, w, h,
                          SDIFF__IMAGE_MAX_SIDE, SDIFF__IMAGE_MAX_SIDE);
    }
    unsigned char *pixels = stbi_load_from_file(f, &w, &h, &comp, 3);
    int io_error = ferror(f);
    int saved_errno = errno;
    fclose(f);
    if (!pixels) {
        if (io_error) return sdiff__err(SDIFF_ERR_IO, "%s: read error: %s", path, strerror(saved_errno));
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: cannot decode image (%s)", path, stbi_failure_reason());
    }
    /* Copied so that sdiff_image_free (SDIFF_FREE) can free it whichever stb
       (private or shared, with its own allocator) decoded it. */
    size_t bytes = (size_t)w * (size_t)h * 3;
    uint8_t *data = (uint8_t *)sdiff__malloc(bytes);
    if (!data) {
        stbi_image_free(pixels);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory for a %dx%d image", path, w, h);
    }
    memcpy(data, pixels, bytes);
    stbi_image_free(pixels);
    out_image->width = w;
    out_image->height = h;
    out_image->channels = 3;
    out_image->data = data;
    return SDIFF_OK;
}

/* CRC-32 as PNG defines it (ISO 3309, reflected 0xEDB88320, init and final
   xor 0xFFFFFFFF). Bitwise: it only ever covers one small text chunk, and
   needs no table to build or to share between threads. */
SDIFF__PRIVATE uint32_t sdiff__crc32(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

SDIFF__PRIVATE void sdiff__put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The "parameters" text chunk, complete (length, type, data, CRC), the way
   A1111 and PIL write it: tEXt when the text is plain ASCII (tEXt means
   Latin-1, so UTF-8 bytes in it would be read back as mojibake), iTXt
   (uncompressed, no language tag) otherwise. */
SDIFF__PRIVATE sdiff_status sdiff__png_text_chunk(const char *text, unsigned char **out, size_t *out_len) {
    static const char key[] = "parameters";
    size_t key_len = sizeof key - 1, text_len = strlen(text);
    bool ascii = true;
    for (size_t i = 0; i < text_len; i++)
        if ((unsigned char)text[i] >= 0x80) { ascii = false; break; }
    if (!ascii && !sdiff__utf8_valid(text, text_len, NULL))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: text is not valid UTF-8");
    /* tEXt: key NUL text.  iTXt: key NUL flag(0) method(0) lang NUL
       translated-key NUL text. */
    size_t head = ascii ? key_len + 1 : key_len + 5;
    if (text_len > 0x7FFFFFFFu - head)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: text of %zu bytes is too long for PNG",
                          text_len);
    size_t data_len = head + text_len;
    unsigned char *c = (unsigned char *)sdiff__malloc(12 + data_len);
    if (!c) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "sdiff_image_write_png: out of memory");
    sdiff__put_be32(c, (uint32_t)data_len);
    memcpy(c + 4, ascii ? "tEXt" : "iTXt", 4);
    unsigned char *d = c + 8;
    memcpy(d, key, key_len + 1);
    if (!ascii) memset(d + key_len + 1, 0, 4);
    memcpy(d + head, text, text_len);
    sdiff__put_be32(c + 8 + data_len, sdiff__crc32(0, c + 4, 4 + data_len));
    *out = c;
    *out_len = 12 + data_len;
    return SDIFF_OK;
}

SDIFF_API sdiff_status sdiff_image_write_png(const sdiff_image *image, const char *path, const char *text) {
    if (!image || !path || !image->data)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: image, its data and path must not be NULL");
    if (image->channels < 1 || image->channels > 4)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: %d channels (1 to 4 are supported)",
                          image->channels);
    if (image->width < 1 || image->height < 1 || image->width > SDIFF__IMAGE_MAX_SIDE ||
        image->height > SDIFF__IMAGE_MAX_SIDE)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_image_write_png: size %dx%d (1 to %d per side)", image->width,
                          image->height, SDIFF__IMAGE_MAX_SIDE);

    unsigned char *chunk = NULL;
    size_t chunk_len = 0;
    if (text) SDIFF__TRY(sdiff__png_text_chunk(text, &chunk, &chunk_len));

    int png_len = 0;
    unsigned char *png = stbi_write_png_to_mem(image->data, image->width * image->channels, image->width,
                                               image->height, image->channels, &png_len);
    if (!png) {
        sdiff__free(chunk);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory encoding a %dx%d PNG", path, image->width,
                          image->height);
    }
    /* The chunk goes right after IHDR, where readers that stop early (and
       A1111's "PNG info" tab) look: signature (8) + IHDR (4+4+13+4) = 33. */
    const size_t ihdr_end = 33;
    if (png_len < (int)ihdr_end || memcmp(png + 12, "IHDR", 4) != 0) {
        SDIFF__STBIW_FREE(png);
        sdiff__free(chunk);
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: stb_image_write produced no IHDR chunk", path);
    }

    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        SDIFF__STBIW_FREE(png);
        sdiff__free(chunk);
        return sdiff__err(SDIFF_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    size_t n = (size_t)png_len;
    bool ok = fwrite(png, 1, ihdr_end, f) == ihdr_end;
    if (ok && chunk) ok = fwrite(chunk, 1, chunk_len, f) == chunk_len;
    if (ok) ok = fwrite(png + ihdr_end, 1, n - ihdr_end, f) == n - ihdr_end;
    int e = errno;
    /* fclose flushes: a full disk often shows only here. */
    if (fclose(f) != 0 && ok) { ok = false; e = errno; }
    SDIFF__STBIW_FREE(png);
    sdiff__free(chunk);
    if (!ok) {
        remove(path); /* a half-written PNG is worse than none */
        return sdiff__err(SDIFF_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    return SDIFF_OK;
}

#else /* SDIFF_NO_STB */

SDIFF_API sdiff_status sdiff_image_load(const char *path, sdiff_image *out_image) {
    if (out_image) memset(out_image, 0, sizeof *out_image);
    return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: image loading was compiled out (SDIFF_NO_STB)", path ? path : "(null)");
}
SDIFF_API sdiff_status sdiff_image_write_png(const sdiff_image *image, const char *path, const char *text) {
    SDIFF__UNUSED(image);
    SDIFF__UNUSED(text);
    return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: PNG writing was compiled out (SDIFF_NO_STB)", path ? path : "(null)");
}

#endif /* SDIFF_NO_STB */

/* --- generation parameters as text, in the layout A1111 writes into PNGs
   (and that its "PNG info" tab, ComfyUI and civitai parse back):
       <prompt>
       Negative prompt: <negative>
       Steps: 30, Sampler: euler_a, CFG scale: 7.5, Seed: 42, Size: 512x512, ...
   Lines and fields that would only state a default are left out, as A1111
   does (no negative prompt, clip skip <= 1, eta 0, no init image). */
typedef struct sdiff__textbuf {
    char *buf;
    size_t size, len;   /* len: what was asked for, may exceed size-1 */
} sdiff__textbuf;

SDIFF__PRIVATE void sdiff__textbuf_printf(sdiff__textbuf *t, const char *fmt, ...) SDIFF__PRINTF(2, 3);
SDIFF__PRIVATE void sdiff__textbuf_printf(sdiff__textbuf *t, const char *fmt, ...) {
    size_t room = t->len < t->size ? t->size - t->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? t->buf + t->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) t->len += (size_t)n;
}
SDIFF__PRIVATE void sdiff__textbuf_puts(sdiff__textbuf *t, const char *s) {
    size_t n = strlen(s);
    if (t->len < t->size) {
        size_t room = t->size - t->len - 1, k = n < room ? n : room;
        memcpy(t->buf + t->len, s, k);
        t->buf[t->len + k] = 0;
    }
    t->len += n;
}
/* "%g", but always with '.' as the decimal point: the text is parsed by
   other programs, whatever LC_NUMERIC the host program set. */
SDIFF__PRIVATE void sdiff__textbuf_float(sdiff__textbuf *t, double v) {
    char num[64];
    snprintf(num, sizeof num, "%g", v);
    for (char *p = num; *p; p++)
        if (*p == ',') *p = '.';
    sdiff__textbuf_puts(t, num);
}

SDIFF_API sdiff_status sdiff_gen_params_describe(const sdiff_gen_params *params, char *buf, size_t buf_size) {
    if (!buf || buf_size == 0)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_gen_params_describe: buf must hold at least 1 byte");
    buf[0] = 0;
    if (!params) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_gen_params_describe: params is NULL");
    sdiff__textbuf t = {buf, buf_size, 0};
    sdiff__textbuf_puts(&t, params->prompt ? params->prompt : "");
    if (params->negative_prompt && params->negative_prompt[0]) {
        sdiff__textbuf_puts(&t, "\nNegative prompt: ");
        sdiff__textbuf_puts(&t, params->negative_prompt);
    }
    const char *sampler = sdiff_sampler_name(params->sampler);
    sdiff__textbuf_printf(&t, "\nSteps: %d, Sampler: %s, CFG scale: ", params->steps, sampler ? sampler : "unknown");
    sdiff__textbuf_float(&t, params->cfg_scale);
    sdiff__textbuf_printf(&t, ", Seed: %llu", (unsigned long long)params->seed);
    if (params->width > 0 && params->height > 0)
        sdiff__textbuf_printf(&t, ", Size: %dx%d", params->width, params->height);
    if (params->clip_skip > 1) sdiff__textbuf_printf(&t, ", Clip skip: %d", params->clip_skip);
    if (params->eta != 0) {
        sdiff__textbuf_puts(&t, ", Eta: ");
        sdiff__textbuf_float(&t, params->eta);
    }
    if (params->init_image) {
        sdiff__textbuf_puts(&t, ", Denoising strength: ");
        sdiff__textbuf_float(&t, params->strength);
    }
    sdiff__textbuf_printf(&t, ", Batch: %d, Generator: sdiff " SDIFF_VERSION_STRING,
                          params->batch > 0 ? params->batch : 1);
    if (t.len >= buf_size) {
        /* Half a prompt stored as if it were the whole one would mislead
           whoever reads the PNG back, so a short buffer gets nothing. */
        buf[0] = 0;
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_gen_params_describe: buffer of %zu bytes is too small (%zu needed)",
                          buf_size, t.len + 1);
    }
    return SDIFF_OK;
}
