/* >>json -------------------------------------------------------------------
   JSON: a small, strict reader for config.json, model_index.json, vocab.json
   and scheduler_config.json.

   Strict RFC 8259, with three things Python's json module writes and so
   diffusers' configs can contain: NaN, Infinity and -Infinity. A leading
   UTF-8 byte order mark is skipped (editors on Windows add one). Everything
   else that is not JSON is an SDIFF_ERR_FORMAT naming the document, the line
   and column (1-based, in bytes) and the problem: truncated documents,
   trailing commas, leading zeros, bad escapes, lone surrogates, invalid
   UTF-8, raw control characters in strings, NUL bytes, numbers that overflow
   a double, nesting deeper than SDIFF__JSON_MAX_DEPTH, trailing garbage.

   The tree: every node is an sdiff__json; arrays and objects own a packed
   array of children (items) and objects a parallel array of keys. Strings are
   decoded UTF-8, NUL-terminated; string_len counts bytes, so a "\u0000" inside
   survives. Duplicate keys are kept; lookups scan from the end, so the last
   one wins, as in Python. Lookups are linear: configs are small, and the one
   big object (vocab.json) is read by iterating, never by lookup.

   The parser recurses once per nesting level, so the depth limit also bounds
   the C stack it uses.
   ------------------------------------------------------------------------- */
typedef enum sdiff__json_type {
    SDIFF__JSON_NULL, SDIFF__JSON_BOOL, SDIFF__JSON_NUMBER, SDIFF__JSON_STRING, SDIFF__JSON_ARRAY, SDIFF__JSON_OBJECT
} sdiff__json_type;

typedef struct sdiff__json sdiff__json;
struct sdiff__json {
    sdiff__json_type type;
    bool boolean;
    double number;
    char *string;        /* decoded UTF-8, NUL-terminated (NULL unless a string) */
    size_t string_len;   /* bytes, not counting the terminator                   */
    size_t count;        /* array elements / object members                      */
    sdiff__json *items;  /* array elements or object values                      */
    char **keys;         /* object keys (decoded, NUL-terminated)                */
};

#define SDIFF__JSON_MAX_DEPTH 128

typedef struct sdiff__json_parser {
    const unsigned char *s, *end, *begin;
    const char *what;
} sdiff__json_parser;

/* Formats "what:line:col: message" for the byte at p. */
SDIFF__PRIVATE sdiff_status sdiff__json_fail(const sdiff__json_parser *ps, const unsigned char *p, const char *msg) {
    size_t line = 1, col = 1;
    for (const unsigned char *q = ps->begin; q < p && q < ps->end; q++) {
        if (*q == '\n') { line++; col = 1; }
        else col++;
    }
    return sdiff__err(SDIFF_ERR_FORMAT, "%s:%zu:%zu: %s", ps->what ? ps->what : "JSON", line, col, msg);
}

SDIFF__PRIVATE void sdiff__json_free_children(sdiff__json *j) {
    if (j->type == SDIFF__JSON_STRING) sdiff__free(j->string);
    if (j->type == SDIFF__JSON_ARRAY || j->type == SDIFF__JSON_OBJECT) {
        for (size_t i = 0; i < j->count; i++) {
            sdiff__json_free_children(&j->items[i]);
            if (j->keys) sdiff__free(j->keys[i]);
        }
        sdiff__free(j->items);
        sdiff__free(j->keys);
    }
    memset(j, 0, sizeof *j);
}

SDIFF__PRIVATE void sdiff__json_free(sdiff__json *j) {
    if (!j) return;
    sdiff__json_free_children(j);
    sdiff__free(j);
}

SDIFF__PRIVATE void sdiff__json_skip_ws(sdiff__json_parser *ps) {
    while (ps->s < ps->end && (*ps->s == ' ' || *ps->s == '\t' || *ps->s == '\n' || *ps->s == '\r')) ps->s++;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), 0 if invalid:
   overlong forms, surrogates (ED A0..BF) and code points above U+10FFFF are
   invalid, as in Python's strict decoder. */
SDIFF__PRIVATE int sdiff__json_utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (end - p < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

SDIFF__PRIVATE int sdiff__json_hex4(const unsigned char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Parses the string at ps->s (which is at the opening quote) into a new
   NUL-terminated buffer. The decoded text is never longer than the source
   (escapes shrink or keep size: \uXXXX is 6 bytes for <= 3 UTF-8 bytes, a
   surrogate pair 12 for 4), so one allocation of the source span suffices. */
SDIFF__PRIVATE sdiff_status sdiff__json_string_at(sdiff__json_parser *ps, char **out, size_t *out_len) {
    const unsigned char *start = ps->s + 1, *p = start;
    /* Find the closing quote first, to size the buffer. */
    while (p < ps->end && *p != '"') {
        if (*p == '\\') { p++; if (p >= ps->end) break; }
        p++;
    }
    if (p >= ps->end) return sdiff__json_fail(ps, ps->s, "unterminated string");
    char *buf = (char *)sdiff__malloc((size_t)(p - start) + 1);
    if (!buf) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
    size_t n = 0;
    const unsigned char *q = start;
    while (q < p) {
        unsigned c = *q;
        if (c == '\\') {
            unsigned e = q[1];
            const char *simple = strchr("\"\\/bfnrt", (int)e);
            if (e && simple) {
                static const char map[] = "\"\\/\b\f\n\r\t";
                buf[n++] = map[simple - "\"\\/bfnrt"];
                q += 2;
                continue;
            }
            if (e != 'u') { sdiff__free(buf); return sdiff__json_fail(ps, q, "invalid escape"); }
            if (p - q < 6) { sdiff__free(buf); return sdiff__json_fail(ps, q, "truncated \\u escape"); }
            int u = sdiff__json_hex4(q + 2);
            if (u < 0) { sdiff__free(buf); return sdiff__json_fail(ps, q, "invalid \\u escape"); }
            uint32_t cp = (uint32_t)u;
            const unsigned char *esc = q;
            q += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) { sdiff__free(buf); return sdiff__json_fail(ps, esc, "lone low surrogate"); }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                int lo = (p - q >= 6 && q[0] == '\\' && q[1] == 'u') ? sdiff__json_hex4(q + 2) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF) { sdiff__free(buf); return sdiff__json_fail(ps, esc, "lone high surrogate"); }
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                q += 6;
            }
            if (cp < 0x80) buf[n++] = (char)cp;
            else if (cp < 0x800) { buf[n++] = (char)(0xC0 | (cp >> 6)); buf[n++] = (char)(0x80 | (cp & 0x3F)); }
            else if (cp < 0x10000) {
                buf[n++] = (char)(0xE0 | (cp >> 12)); buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (cp & 0x3F));
            } else {
                buf[n++] = (char)(0xF0 | (cp >> 18)); buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[n++] = (char)(0x80 | (cp & 0x3F));
            }
            continue;
        }
        if (c < 0x20) { sdiff__free(buf); return sdiff__json_fail(ps, q, "control character in string"); }
        int len = sdiff__json_utf8_len(q, p);
        if (!len) { sdiff__free(buf); return sdiff__json_fail(ps, q, "invalid UTF-8 in string"); }
        memcpy(buf + n, q, (size_t)len);
        n += (size_t)len;
        q += len;
    }
    buf[n] = 0;
    ps->s = p + 1;
    *out = buf;
    *out_len = n;
    return SDIFF_OK;
}

/* Converts a validated JSON number span to a double without depending on the
   C locale: the digits are rewritten as "[-]DIGITSeEXP" with no decimal
   point, which strtod reads the same way in every locale, correctly rounded. */
SDIFF__PRIVATE bool sdiff__json_number_value(const unsigned char *p, const unsigned char *end, double *out) {
    char small[80], *buf = small;
    size_t cap = (size_t)(end - p) + 32;
    if (cap > sizeof small) {
        buf = (char *)sdiff__malloc(cap);
        if (!buf) return false;
    }
    size_t n = 0;
    long long exp_adj = 0, exp = 0;
    bool in_frac = false;
    if (*p == '-') buf[n++] = *p++;
    for (; p < end && *p != 'e' && *p != 'E'; p++) {
        if (*p == '.') { in_frac = true; continue; }
        buf[n++] = (char)*p;
        if (in_frac) exp_adj--;
    }
    if (p < end) { /* exponent; saturate: anything past 1e6 over- or underflows anyway */
        p++;
        bool neg = false;
        if (*p == '+' || *p == '-') neg = *p++ == '-';
        for (; p < end; p++) if (exp < 1000000) exp = exp * 10 + (*p - '0');
        if (neg) exp = -exp;
    }
    snprintf(buf + n, cap - n, "e%lld", exp + exp_adj);
    *out = strtod(buf, NULL);
    if (buf != small) sdiff__free(buf);
    return true;
}

SDIFF__PRIVATE sdiff_status sdiff__json_value(sdiff__json_parser *ps, sdiff__json *v, int depth);

/* Appends a zeroed child to a growing children array (doubling). */
SDIFF__PRIVATE sdiff_status sdiff__json_grow(sdiff__json_parser *ps, sdiff__json *v, size_t *cap, bool with_keys) {
    if (v->count < *cap) return SDIFF_OK;
    size_t nc = *cap ? *cap * 2 : 4;
    sdiff__json *items = (sdiff__json *)sdiff__realloc(v->items, nc * sizeof *items);
    if (!items) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
    v->items = items;
    if (with_keys) {
        char **keys = (char **)sdiff__realloc(v->keys, nc * sizeof *keys);
        if (!keys) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
        v->keys = keys;
    }
    *cap = nc;
    return SDIFF_OK;
}

SDIFF__PRIVATE bool sdiff__json_literal(sdiff__json_parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->s) < n || memcmp(ps->s, word, n) != 0) return false;
    ps->s += n;
    return true;
}

/* On failure v is left holding whatever was parsed so far; the caller frees
   the whole tree, so no partial state leaks. */
SDIFF__PRIVATE sdiff_status sdiff__json_value(sdiff__json_parser *ps, sdiff__json *v, int depth) {
    sdiff__json_skip_ws(ps);
    if (ps->s >= ps->end) return sdiff__json_fail(ps, ps->s, "unexpected end of input, expected a value");
    const unsigned char *at = ps->s;
    unsigned c = *at;
    if (c == '{' || c == '[') {
        bool obj = c == '{';
        if (depth >= SDIFF__JSON_MAX_DEPTH) return sdiff__json_fail(ps, at, "nesting deeper than 128 levels");
        v->type = obj ? SDIFF__JSON_OBJECT : SDIFF__JSON_ARRAY;
        ps->s++;
        size_t cap = 0;
        sdiff__json_skip_ws(ps);
        if (ps->s < ps->end && *ps->s == (obj ? '}' : ']')) { ps->s++; return SDIFF_OK; }
        for (;;) {
            SDIFF__TRY(sdiff__json_grow(ps, v, &cap, obj));
            sdiff__json *child = &v->items[v->count];
            memset(child, 0, sizeof *child);
            if (obj) {
                sdiff__json_skip_ws(ps);
                if (ps->s >= ps->end) return sdiff__json_fail(ps, ps->s, "unexpected end of input, expected a key");
                if (*ps->s != '"') return sdiff__json_fail(ps, ps->s, "expected a string key");
                size_t klen;
                v->keys[v->count] = NULL;
                /* count is bumped only once the key exists, so the free path
                   never sees an unset key */
                char *key;
                SDIFF__TRY(sdiff__json_string_at(ps, &key, &klen));
                v->keys[v->count] = key;
                v->count++;
                sdiff__json_skip_ws(ps);
                if (ps->s >= ps->end || *ps->s != ':') return sdiff__json_fail(ps, ps->s, "expected ':'");
                ps->s++;
            } else {
                v->count++;
            }
            SDIFF__TRY(sdiff__json_value(ps, child, depth + 1));
            sdiff__json_skip_ws(ps);
            if (ps->s >= ps->end)
                return sdiff__json_fail(ps, ps->s, obj ? "unexpected end of input, expected ',' or '}'"
                                                       : "unexpected end of input, expected ',' or ']'");
            if (*ps->s == ',') {
                ps->s++;
                sdiff__json_skip_ws(ps);
                if (ps->s < ps->end && *ps->s == (obj ? '}' : ']')) return sdiff__json_fail(ps, ps->s, "trailing comma");
                continue;
            }
            if (*ps->s == (obj ? '}' : ']')) { ps->s++; break; }
            return sdiff__json_fail(ps, ps->s, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        /* Give back the slack of the doubling. */
        if (v->count < cap) {
            sdiff__json *items = (sdiff__json *)sdiff__realloc(v->items, v->count * sizeof *items);
            if (items) v->items = items;
        }
        return SDIFF_OK;
    }
    if (c == '"') {
        v->type = SDIFF__JSON_STRING;
        return sdiff__json_string_at(ps, &v->string, &v->string_len);
    }
    if (sdiff__json_literal(ps, "true")) { v->type = SDIFF__JSON_BOOL; v->boolean = true; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "false")) { v->type = SDIFF__JSON_BOOL; v->boolean = false; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "null")) { v->type = SDIFF__JSON_NULL; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "NaN")) { v->type = SDIFF__JSON_NUMBER; v->number = NAN; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "Infinity")) { v->type = SDIFF__JSON_NUMBER; v->number = INFINITY; return SDIFF_OK; }
    if (sdiff__json_literal(ps, "-Infinity")) { v->type = SDIFF__JSON_NUMBER; v->number = -INFINITY; return SDIFF_OK; }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
        const unsigned char *p = at, *e = ps->end;
        if (*p == '-') p++;
        if (p >= e || *p < '0' || *p > '9') return sdiff__json_fail(ps, p, "expected a digit");
        if (*p == '0') {
            p++;
            if (p < e && *p >= '0' && *p <= '9') return sdiff__json_fail(ps, p, "leading zero in number");
        } else {
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        if (p < e && *p == '.') {
            p++;
            if (p >= e || *p < '0' || *p > '9') return sdiff__json_fail(ps, p, "expected a digit after '.'");
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        if (p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-')) p++;
            if (p >= e || *p < '0' || *p > '9') return sdiff__json_fail(ps, p, "expected a digit in the exponent");
            while (p < e && *p >= '0' && *p <= '9') p++;
        }
        v->type = SDIFF__JSON_NUMBER;
        /* Fast path for short plain integers (every value of vocab.json):
           below 2^53 the double is exact. */
        const unsigned char *d = at + (*at == '-');
        if (p - d <= 15 && memchr(d, '.', (size_t)(p - d)) == NULL && memchr(d, 'e', (size_t)(p - d)) == NULL &&
            memchr(d, 'E', (size_t)(p - d)) == NULL) {
            int64_t iv = 0;
            for (const unsigned char *q = d; q < p; q++) iv = iv * 10 + (*q - '0');
            v->number = (double)(*at == '-' ? -iv : iv);
            ps->s = p;
            return SDIFF_OK;
        }
        if (!sdiff__json_number_value(at, p, &v->number))
            return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps->what);
        if (isinf(v->number)) return sdiff__json_fail(ps, at, "number out of range of a double");
        ps->s = p;
        return SDIFF_OK;
    }
    if (c == 0) return sdiff__json_fail(ps, at, "NUL byte");
    return sdiff__json_fail(ps, at, "expected a value");
}

SDIFF__PRIVATE sdiff_status sdiff__json_parse(const char *text, size_t len, const char *what, sdiff__json **out) {
    *out = NULL;
    if (!text) return sdiff__err(SDIFF_ERR_INVALID_ARG, "%s: no JSON text", what ? what : "JSON");
    sdiff__json_parser ps;
    ps.begin = ps.s = (const unsigned char *)text;
    ps.end = ps.s + len;
    ps.what = what ? what : "JSON";
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.s += 3;
    sdiff__json *root = (sdiff__json *)sdiff__calloc(1, sizeof *root);
    if (!root) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory", ps.what);
    sdiff_status st = sdiff__json_value(&ps, root, 0);
    if (st == SDIFF_OK) {
        sdiff__json_skip_ws(&ps);
        if (ps.s < ps.end) st = sdiff__json_fail(&ps, ps.s, "unexpected data after the document");
    }
    if (st != SDIFF_OK) { sdiff__json_free(root); return st; }
    *out = root;
    return SDIFF_OK;
}

SDIFF__PRIVATE const sdiff__json *sdiff__json_get(const sdiff__json *obj, const char *key) {
    if (!obj || obj->type != SDIFF__JSON_OBJECT || !key) return NULL;
    for (size_t i = obj->count; i-- > 0;)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

SDIFF__PRIVATE double sdiff__json_number(const sdiff__json *obj, const char *key, double fallback) {
    const sdiff__json *v = sdiff__json_get(obj, key);
    return v && v->type == SDIFF__JSON_NUMBER ? v->number : fallback;
}

SDIFF__PRIVATE bool sdiff__json_bool(const sdiff__json *obj, const char *key, bool fallback) {
    const sdiff__json *v = sdiff__json_get(obj, key);
    return v && v->type == SDIFF__JSON_BOOL ? v->boolean : fallback;
}

SDIFF__PRIVATE const char *sdiff__json_string(const sdiff__json *obj, const char *key, const char *fallback) {
    const sdiff__json *v = sdiff__json_get(obj, key);
    return v && v->type == SDIFF__JSON_STRING ? v->string : fallback;
}
