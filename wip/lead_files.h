/* >>files ==================================================================
   Files: mmap, small text files, safetensors

   A checkpoint is mapped read-only and never copied whole: tensors are read
   straight out of the mapping when they are uploaded to the backend. Every
   offset, size and shape in a safetensors header is checked against the file
   before anything is read, so a truncated or hostile file is an error, not a
   crash (tests/test_files.c fuzzes this).
   ========================================================================= */
typedef struct sdiff__mapped_file {
    const unsigned char *data;
    size_t size;
} sdiff__mapped_file;

SDIFF__PRIVATE sdiff_status sdiff__file_map(const char *path, sdiff__mapped_file *f) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sdiff__err(SDIFF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sdiff__err(SDIFF_ERR_IO, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size == 0) { close(fd); return SDIFF_OK; } /* mmap refuses 0 bytes; callers see size 0 */
    void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return sdiff__err(SDIFF_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    f->data = (const unsigned char *)p;
    return SDIFF_OK;
}
SDIFF__PRIVATE void sdiff__file_unmap(sdiff__mapped_file *f) {
    if (f->data) munmap((void *)f->data, f->size);
    memset(f, 0, sizeof *f);
}
SDIFF__PRIVATE bool sdiff__path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}
SDIFF__PRIVATE bool sdiff__is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
/* "a" + "/" + "b" into buf; false if it does not fit. */
SDIFF__PRIVATE bool sdiff__path_join(char *buf, size_t size, const char *a, const char *b) {
    int n = snprintf(buf, size, "%s/%s", a, b);
    return n > 0 && (size_t)n < size;
}
/* Reads a whole (small) text file, NUL-terminated, refusing files larger than
   max_bytes so a wrong path cannot make us read gigabytes. */
SDIFF__PRIVATE sdiff_status sdiff__read_text(const char *path, size_t max_bytes, char **out, size_t *out_len) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sdiff__err(SDIFF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= max_bytes) {
                sdiff__free(buf);
                fclose(fp);
                return sdiff__err(SDIFF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            }
            cap = cap ? SDIFF__MIN(cap * 2, max_bytes) : 4096;
            char *nb = (char *)sdiff__realloc(buf, cap + 1);
            if (!nb) { sdiff__free(buf); fclose(fp); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", path); }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    bool failed = ferror(fp) != 0;
    fclose(fp);
    if (failed) { sdiff__free(buf); return sdiff__err(SDIFF_ERR_IO, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return SDIFF_OK;
}
/* Parses a JSON file (configs are small: 16 MiB is far above any real one). */
SDIFF__PRIVATE sdiff_status sdiff__json_load(const char *path, sdiff__json **out) {
    char *text;
    size_t len = 0;
    *out = NULL;
    SDIFF__TRY(sdiff__read_text(path, (size_t)16 << 20, &text, &len));
    sdiff_status st = sdiff__json_parse(text, len, path, out);
    sdiff__free(text);
    return st;
}

/* --- safetensors: 8-byte little-endian header length N, N bytes of JSON
   {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...
   "__metadata__": {...}}, then the data; offsets are relative to its start. */
#define SDIFF__ST_MAX_DIMS 8
#define SDIFF__ST_MAX_HEADER ((uint64_t)100 << 20)

typedef struct sdiff__st_tensor {
    char *name;
    char dtype_name[12];        /* as written: "F16", "I64", ...                */
    int dtype;                  /* an sdiff__dtype, or -1 for other known dtypes */
    int nd;
    int64_t shape[SDIFF__ST_MAX_DIMS];
    const unsigned char *data;  /* inside the mapping                          */
    size_t nbytes;
} sdiff__st_tensor;

typedef struct sdiff__safetensors {
    char path[512];
    sdiff__mapped_file file;
    sdiff__st_tensor *tensors;  /* sorted by name                              */
    size_t n;
} sdiff__safetensors;

SDIFF__PRIVATE int sdiff__st_cmp_name(const void *a, const void *b) {
    return strcmp(((const sdiff__st_tensor *)a)->name, ((const sdiff__st_tensor *)b)->name);
}
SDIFF__PRIVATE int sdiff__st_cmp_offset(const void *a, const void *b) {
    const sdiff__st_tensor *x = *(const sdiff__st_tensor *const *)a, *y = *(const sdiff__st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : 0;
}
SDIFF__PRIVATE void sdiff__st_free_tensors(sdiff__safetensors *st) {
    for (size_t i = 0; i < st->n; i++) sdiff__free(st->tensors[i].name);
    sdiff__free(st->tensors);
    st->tensors = NULL;
    st->n = 0;
}
/* Element size of a safetensors dtype name, 0 if unknown. */
SDIFF__PRIVATE size_t sdiff__st_dtype_size(const char *name, int *dtype) {
    static const struct { const char *name; size_t size; int dtype; } k[] = {
        {"F32", 4, SDIFF__F32}, {"F16", 2, SDIFF__F16}, {"BF16", 2, SDIFF__BF16}, {"F64", 8, -1},
        {"I64", 8, -1}, {"I32", 4, -1}, {"I16", 2, -1}, {"I8", 1, -1}, {"U64", 8, -1}, {"U32", 4, -1},
        {"U16", 2, -1}, {"U8", 1, -1}, {"BOOL", 1, -1}, {"F8_E4M3", 1, -1}, {"F8_E5M2", 1, -1}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (strcmp(name, k[i].name) == 0) { *dtype = k[i].dtype; return k[i].size; }
    return 0;
}
/* Parses a safetensors image already in memory (the mapping). `what` names it
   in messages. On success st->tensors points into `data`. */
SDIFF__PRIVATE sdiff_status sdiff__st_parse(const unsigned char *data, size_t size, const char *what,
                                           sdiff__safetensors *st) {
    st->tensors = NULL;
    st->n = 0;
    if (size < 8)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: truncated (%zu bytes): a safetensors file starts with an 8-byte header length",
                          what, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | data[i];
    if (hlen > size - 8)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes): truncated or not safetensors",
                          what, (unsigned long long)hlen, size);
    if (hlen > SDIFF__ST_MAX_HEADER)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: header of %llu bytes is larger than any real checkpoint's", what,
                          (unsigned long long)hlen);
    sdiff__json *root;
    SDIFF__TRY(sdiff__json_parse((const char *)data + 8, (size_t)hlen, what, &root));
    sdiff_status status = SDIFF_OK;
    const unsigned char *base = data + 8 + hlen;
    size_t data_size = size - 8 - (size_t)hlen;
    if (root->type != SDIFF__JSON_OBJECT) {
        status = sdiff__err(SDIFF_ERR_FORMAT, "%s: header is not a JSON object", what);
        goto done;
    }
    st->tensors = (sdiff__st_tensor *)sdiff__calloc(root->count ? root->count : 1, sizeof *st->tensors);
    if (!st->tensors) { status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", what); goto done; }
    for (size_t i = 0; i < root->count; i++) {
        const char *key = root->keys[i];
        const sdiff__json *v = &root->items[i];
        if (strcmp(key, "__metadata__") == 0) continue;
        sdiff__st_tensor *t = &st->tensors[st->n];
        const sdiff__json *dt = sdiff__json_get(v, "dtype"), *shape = sdiff__json_get(v, "shape"),
                          *offs = sdiff__json_get(v, "data_offsets");
        if (!dt || dt->type != SDIFF__JSON_STRING || !shape || shape->type != SDIFF__JSON_ARRAY || !offs ||
            offs->type != SDIFF__JSON_ARRAY || offs->count != 2) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' lacks a valid dtype, shape or data_offsets", what, key);
            goto done;
        }
        size_t esize = sdiff__st_dtype_size(dt->string, &t->dtype);
        if (!esize) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%.16s'", what, key, dt->string);
            goto done;
        }
        snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dt->string);
        if (shape->count > SDIFF__ST_MAX_DIMS) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has %zu dimensions (at most %d)", what, key,
                                shape->count, SDIFF__ST_MAX_DIMS);
            goto done;
        }
        /* numel * esize with overflow checks: every dim is an exact integer */
        uint64_t bytes = esize;
        t->nd = (int)shape->count;
        for (size_t d = 0; d < shape->count; d++) {
            double x = shape->items[d].number;
            if (shape->items[d].type != SDIFF__JSON_NUMBER || x < 0 || x > 9.0e15 || x != floor(x)) {
                status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has an invalid dimension", what, key);
                goto done;
            }
            t->shape[d] = (int64_t)x;
            if (t->shape[d] && bytes > UINT64_MAX / (uint64_t)t->shape[d]) {
                status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has an absurd shape (size overflows)", what, key);
                goto done;
            }
            bytes *= (uint64_t)t->shape[d];
        }
        double b0 = offs->items[0].number, b1 = offs->items[1].number;
        if (offs->items[0].type != SDIFF__JSON_NUMBER || offs->items[1].type != SDIFF__JSON_NUMBER || b0 < 0 ||
            b1 < b0 || b0 != floor(b0) || b1 != floor(b1) || b1 > (double)data_size) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' data_offsets [%.0f, %.0f] lie outside the %zu data bytes",
                                what, key, b0, b1, data_size);
            goto done;
        }
        if ((uint64_t)(b1 - b0) != bytes) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' has %.0f data bytes but its shape and dtype need %llu",
                                what, key, b1 - b0, (unsigned long long)bytes);
            goto done;
        }
        t->data = base + (size_t)b0;
        t->nbytes = (size_t)bytes;
        t->name = sdiff__strdup(key);
        if (!t->name) { status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", what); goto done; }
        st->n++;
    }
    {   /* no two tensors may share bytes: sort by offset and compare neighbours */
        sdiff__st_tensor **byoff = (sdiff__st_tensor **)sdiff__calloc(st->n ? st->n : 1, sizeof *byoff);
        if (!byoff) { status = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", what); goto done; }
        for (size_t i = 0; i < st->n; i++) byoff[i] = &st->tensors[i];
        qsort(byoff, st->n, sizeof *byoff, sdiff__st_cmp_offset);
        for (size_t i = 1; i < st->n && status == SDIFF_OK; i++)
            if (byoff[i - 1]->data + byoff[i - 1]->nbytes > byoff[i]->data && byoff[i]->nbytes)
                status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", what, byoff[i - 1]->name,
                                    byoff[i]->name);
        sdiff__free(byoff);
        if (status != SDIFF_OK) goto done;
    }
    qsort(st->tensors, st->n, sizeof *st->tensors, sdiff__st_cmp_name);
    for (size_t i = 1; i < st->n; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
            status = sdiff__err(SDIFF_ERR_FORMAT, "%s: tensor '%s' appears twice", what, st->tensors[i].name);
            goto done;
        }
done:
    sdiff__json_free(root);
    if (status != SDIFF_OK) sdiff__st_free_tensors(st);
    return status;
}
SDIFF__PRIVATE void sdiff__st_close(sdiff__safetensors *st) {
    sdiff__st_free_tensors(st);
    sdiff__file_unmap(&st->file);
}
SDIFF__PRIVATE sdiff_status sdiff__st_open(const char *path, sdiff__safetensors *st) {
    memset(st, 0, sizeof *st);
    snprintf(st->path, sizeof st->path, "%s", path);
    SDIFF__TRY(sdiff__file_map(path, &st->file));
    sdiff_status s = sdiff__st_parse(st->file.data, st->file.size, path, st);
    if (s != SDIFF_OK) sdiff__file_unmap(&st->file);
    return s;
}
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__st_find(const sdiff__safetensors *st, const char *name) {
    size_t lo = 0, hi = st->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}
