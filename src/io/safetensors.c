/*
 * safetensors reader: a strict parser for the JSON header and validation of
 * the byte ranges, for files on disk and for images in memory.
 *
 * Layout: u64 little-endian N, N bytes of UTF-8 JSON (may end in spaces),
 * then the data.  The header is one object: "__metadata__" maps strings to
 * strings; every other key is a tensor {"dtype": "F32", "shape": [2, 3],
 * "data_offsets": [begin, end]} with offsets relative to the data.  Sorted
 * by offset the tensors must tile the data exactly: no gap, no overlap, no
 * trailing byte, and each range as long as its shape and dtype say.
 *
 * The parser is schema-directed recursive descent of fixed depth (so no
 * input can exhaust the stack), checks every index against the buffer, and
 * reports the byte offset of syntax errors.  It never trusts a length or
 * offset from the file before comparing it with the real size.
 */
#include "io/safetensors.h"
#include "data/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct st_tensor {
	char *name;
	int dtype; /* index into dtypes[] */
	int ndim;
	int64_t *shape;
	uint64_t begin, end;
} st_tensor;

typedef struct st_meta {
	char *key, *value;
} st_meta;

struct nb_safetensors {
	char *label;                 /* file name for messages */
	int fd;                      /* -1 for an image in memory */
	const unsigned char *mem;    /* the data, in memory */
	uint64_t data_off, data_len; /* the data starts at data_off of the file */
	st_tensor *t;
	int n, cap;
	st_meta *meta;
	int n_meta, cap_meta;
};

/* The dtypes of the format with their sizes in bits. */
static const struct {
	const char *name;
	int bits;
} dtypes[] = {
    {"BOOL", 8}, {"F4", 4},      {"F6_E2M3", 6}, {"F6_E3M2", 6}, {"U8", 8},
    {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8}, {"F8_E8M0", 8}, {"I16", 16},
    {"U16", 16}, {"F16", 16},    {"BF16", 16},   {"I32", 32},    {"U32", 32},
    {"F32", 32}, {"C64", 64},    {"F64", 64},    {"I64", 64},    {"U64", 64},
};
#define N_DTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

/* ---- helpers ------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *label, const char *fmt, va_list ap)
{
	if (!err || errlen == 0)
		return;
	int k = snprintf(err, errlen, "%s: ", label ? label : "<buffer>");
	if (k >= 0 && (size_t)k < errlen)
		vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
}

static nb_status fail(char *err, size_t errlen, const char *label, nb_status st, const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));
static nb_status fail(char *err, size_t errlen, const char *label, nb_status st, const char *fmt,
                      ...)
{
	va_list ap;
	va_start(ap, fmt);
	set_err(err, errlen, label, fmt, ap);
	va_end(ap);
	return st;
}

/* A name for a message: control characters shown as '?', long names cut. */
static const char *shown(const char *s, char *buf, size_t n)
{
	return nb__shown(s, buf, n);
}

void nb__bswap_elems(void *p, size_t n, size_t esize)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++, b += esize)
		for (size_t j = 0; j < esize / 2; j++) {
			unsigned char c = b[j];
			b[j] = b[esize - 1 - j];
			b[esize - 1 - j] = c;
		}
}

static uint64_t le64(const unsigned char *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* ---- the JSON header ----------------------------------------------------- */

typedef struct parser {
	const unsigned char *s; /* header bytes */
	size_t n, i;
	nb_safetensors *f;
	nb_status st; /* set on failure */
	char *err;
	size_t errlen;
} parser;

/* A syntax or schema error at the current byte of the header. */
static bool perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool perr(parser *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->st =
	    fail(p->err, p->errlen, p->f->label, NB_ERR_FORMAT, "header byte %zu: %s", p->i, msg);
	return false;
}

static bool nomem(parser *p)
{
	p->st =
	    fail(p->err, p->errlen, p->f->label, NB_ERR_NOMEM, "out of memory reading the header");
	return false;
}

static void ws(parser *p)
{
	while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
	                       p->s[p->i] == '\r'))
		p->i++;
}

static const char *describe(parser *p, char *buf, size_t n)
{
	if (p->i >= p->n)
		return "the end of the header";
	unsigned c = p->s[p->i];
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, n, "'%c'", (char)c);
	else
		snprintf(buf, n, "byte 0x%02x", c);
	return buf;
}

/* Skip whitespace, then require byte c. */
static bool expect(parser *p, char c, const char *what)
{
	char buf[32];
	ws(p);
	if (p->i < p->n && p->s[p->i] == (unsigned char)c) {
		p->i++;
		return true;
	}
	return perr(p, "expected %s, found %s", what, describe(p, buf, sizeof buf));
}

static int hexval(unsigned c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

/* The 4 hex digits of a \u escape at p->i; -1 if malformed. */
static long hex4(parser *p)
{
	if (p->n - p->i < 4)
		return -1;
	long v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(p->s[p->i + (size_t)k]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	p->i += 4;
	return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A \uXXXX escape (after the 'u'), with surrogate pairs; appends UTF-8. */
static bool unicode_escape(parser *p, char *o, size_t *k)
{
	long hi = hex4(p);
	if (hi < 0)
		return perr(p, "\\u must be followed by 4 hex digits");
	unsigned long cp = (unsigned long)hi;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return perr(p, "lone low surrogate \\u%04lx", (unsigned long)hi);
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (p->n - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
			return perr(p, "high surrogate \\u%04lx without a low one",
			            (unsigned long)hi);
		p->i += 2;
		long lo = hex4(p);
		if (lo < 0xdc00 || lo > 0xdfff)
			return perr(p, "high surrogate \\u%04lx without a low one",
			            (unsigned long)hi);
		cp = 0x10000 + (((unsigned long)hi - 0xd800) << 10) + ((unsigned long)lo - 0xdc00);
	}
	if (cp == 0)
		return perr(p, "\\u0000 (NUL) is not allowed in a name");
	*k += put_utf8(o + *k, cp);
	return true;
}

/* A JSON string (the opening quote is next, after whitespace) into a new
 * NUL-terminated buffer. */
static bool parse_string(parser *p, char **out, const char *what)
{
	*out = NULL;
	if (!expect(p, '"', what))
		return false;
	/* the raw length bounds the decoded length: escapes never grow */
	size_t j = p->i;
	while (j < p->n && p->s[j] != '"')
		j += p->s[j] == '\\' ? 2 : 1;
	if (j >= p->n)
		return perr(p, "unterminated string");
	char *o = malloc(j - p->i + 1);
	if (!o)
		return nomem(p);
	size_t k = 0;
	for (;;) {
		unsigned c = p->s[p->i];
		if (c == '"') {
			p->i++;
			break;
		}
		if (c < 0x20) {
			free(o);
			return perr(p, "control byte 0x%02x inside a string (must be escaped)", c);
		}
		if (c == '\\') {
			unsigned e = p->s[++p->i];
			p->i++;
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *m = e ? strchr(from, (int)e) : NULL;
			if (m)
				o[k++] = to[m - from];
			else if (e == 'u') {
				if (!unicode_escape(p, o, &k)) {
					free(o);
					return false;
				}
			} else {
				p->i--;
				free(o);
				return perr(p, "invalid escape \\%c",
				            e >= 0x20 && e < 0x7f ? (char)e : '?');
			}
			continue;
		}
		size_t len = nb__utf8_seq(p->s + p->i, p->n - p->i);
		if (!len) {
			free(o);
			return perr(p, "invalid UTF-8 inside a string");
		}
		memcpy(o + k, p->s + p->i, len);
		k += len;
		p->i += len;
	}
	o[k] = 0;
	*out = o;
	return true;
}

/* A JSON number that must be a non-negative integer below 2^63 (dims and
 * offsets: the reference reader takes usize, and we keep them in int64). */
static bool parse_uint(parser *p, uint64_t *out, const char *what)
{
	char buf[32];
	ws(p);
	size_t start = p->i;
	bool neg = false, frac = false, big = false;
	if (p->i < p->n && p->s[p->i] == '-')
		neg = true, p->i++;
	if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') {
		p->i = start;
		return perr(p, "expected %s (a number), found %s", what,
		            describe(p, buf, sizeof buf));
	}
	if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
		return perr(p, "number with a leading zero");
	uint64_t v = 0;
	while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
		unsigned d = p->s[p->i++] - '0';
		if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10)
			big = true;
		else
			v = v * 10 + d;
	}
	if (p->i < p->n && p->s[p->i] == '.') {
		frac = true;
		p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return perr(p, "expected a digit after the decimal point");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
		frac = true;
		p->i++;
		if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
			p->i++;
		if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
			return perr(p, "expected a digit in the exponent");
		while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
			p->i++;
	}
	if (neg || frac) {
		p->i = start;
		return perr(p, "%s must be a non-negative integer", what);
	}
	if (big) {
		p->i = start;
		return perr(p, "%s is too large", what);
	}
	*out = v;
	return true;
}

/* [n, n, ...] of non-negative integers, at most max of them. */
static bool parse_uint_array(parser *p, uint64_t *v, int max, int *count, const char *what)
{
	char buf[32];
	*count = 0;
	if (!expect(p, '[', "'[' (an array)"))
		return false;
	ws(p);
	if (p->i < p->n && p->s[p->i] == ']') {
		p->i++;
		return true;
	}
	for (;;) {
		if (*count == max)
			return perr(p, "%s has more than %d entries", what, max);
		if (!parse_uint(p, &v[(*count)++], what))
			return false;
		ws(p);
		if (p->i < p->n && p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->i < p->n && p->s[p->i] == ']') {
			p->i++;
			return true;
		}
		return perr(p, "expected ',' or ']' in %s, found %s", what,
		            describe(p, buf, sizeof buf));
	}
}

/* After a member: ',' (returns true, *more) or '}' (true, !*more). */
static bool member_end(parser *p, bool *more)
{
	char buf[32];
	ws(p);
	if (p->i < p->n && (p->s[p->i] == ',' || p->s[p->i] == '}')) {
		*more = p->s[p->i++] == ',';
		return true;
	}
	return perr(p, "expected ',' or '}', found %s", describe(p, buf, sizeof buf));
}

/* '{' then either '}' (returns true, *empty) or the first member next. */
static bool object_start(parser *p, bool *empty, const char *what)
{
	if (!expect(p, '{', what))
		return false;
	ws(p);
	*empty = p->i < p->n && p->s[p->i] == '}';
	if (*empty)
		p->i++;
	return true;
}

static bool grow(void **arr, int *cap, int need, size_t esz)
{
	if (need <= *cap)
		return true;
	int nc = *cap ? *cap * 2 : 16;
	if (nc < need)
		nc = need;
	void *q = realloc(*arr, (size_t)nc * esz);
	if (!q)
		return false;
	*arr = q;
	*cap = nc;
	return true;
}

static bool parse_metadata(parser *p)
{
	bool empty, more = true;
	if (!object_start(p, &empty, "'{' (__metadata__ is an object of strings)"))
		return false;
	if (empty)
		return true;
	while (more) {
		nb_safetensors *f = p->f;
		if (!grow((void **)&f->meta, &f->cap_meta, f->n_meta + 1, sizeof *f->meta))
			return nomem(p);
		st_meta *m = &f->meta[f->n_meta];
		m->key = m->value = NULL;
		if (!parse_string(p, &m->key, "a metadata key string"))
			return false;
		f->n_meta++;
		if (!expect(p, ':', "':'"))
			return false;
		char buf[128];
		ws(p);
		if (p->i >= p->n || p->s[p->i] != '"')
			return perr(p, "__metadata__ value of \"%s\" must be a string",
			            shown(m->key, buf, sizeof buf));
		if (!parse_string(p, &m->value, "a string") || !member_end(p, &more))
			return false;
	}
	return true;
}

static int find_dtype(const char *s)
{
	for (int i = 0; i < N_DTYPES; i++)
		if (!strcmp(dtypes[i].name, s))
			return i;
	return -1;
}

static bool parse_tensor_field(parser *p, st_tensor *t, const char *key, unsigned *seen)
{
	char nb[128], kb[64];
	const char *name = shown(t->name, nb, sizeof nb);
	static const char *const fields[] = {"dtype", "shape", "data_offsets"};
	int which = -1;
	for (int i = 0; i < 3; i++)
		if (!strcmp(key, fields[i]))
			which = i;
	if (which < 0)
		return perr(p, "tensor \"%s\": unknown field \"%s\"", name,
		            shown(key, kb, sizeof kb));
	if (*seen & 1u << which)
		return perr(p, "tensor \"%s\": field \"%s\" appears twice", name, key);
	*seen |= 1u << which;
	if (which == 0) {
		char *dt;
		if (!parse_string(p, &dt, "a dtype string"))
			return false;
		t->dtype = find_dtype(dt);
		if (t->dtype < 0) {
			perr(p, "tensor \"%s\": unknown dtype \"%s\"", name,
			     shown(dt, kb, sizeof kb));
			free(dt);
			return false;
		}
		free(dt);
		return true;
	}
	uint64_t v[NB_ST_MAX_DIMS];
	int n;
	if (which == 1) {
		if (!parse_uint_array(p, v, NB_ST_MAX_DIMS, &n, "shape"))
			return false;
		t->shape = malloc(sizeof *t->shape * (size_t)(n ? n : 1));
		if (!t->shape)
			return nomem(p);
		t->ndim = n;
		for (int i = 0; i < n; i++)
			t->shape[i] = (int64_t)v[i];
		return true;
	}
	if (!parse_uint_array(p, v, 2, &n, "data_offsets"))
		return false;
	if (n != 2)
		return perr(p, "tensor \"%s\": data_offsets must be [begin, end]", name);
	t->begin = v[0];
	t->end = v[1];
	return true;
}

/* The tensor entry {"dtype": .., "shape": .., "data_offsets": ..} of a name
 * already stored as f->t[idx].name. */
static bool parse_tensor(parser *p, int idx)
{
	char nb[128];
	bool empty, more = true;
	unsigned seen = 0;
	if (!object_start(p, &empty, "'{' (a tensor entry)"))
		return false;
	while (!empty && more) {
		char *key;
		if (!parse_string(p, &key, "a field name string"))
			return false;
		bool ok = expect(p, ':', "':'") && parse_tensor_field(p, &p->f->t[idx], key, &seen);
		free(key);
		if (!ok || !member_end(p, &more))
			return false;
	}
	if (seen != 7) {
		static const char *const fields[] = {"dtype", "shape", "data_offsets"};
		int miss = !(seen & 1) ? 0 : !(seen & 2) ? 1 : 2;
		return perr(p, "tensor \"%s\": field \"%s\" is missing",
		            shown(p->f->t[idx].name, nb, sizeof nb), fields[miss]);
	}
	return true;
}

static bool parse_header(parser *p)
{
	char buf[32];
	/* the reference reader insists on '{' as the very first byte */
	if (p->n == 0 || p->s[0] != '{')
		return perr(p, "the header must start with '{', found %s",
		            describe(p, buf, sizeof buf));
	bool empty, more = true, had_meta = false;
	if (!object_start(p, &empty, "'{'"))
		return false;
	while (!empty && more) {
		char *key;
		size_t at = p->i;
		if (!parse_string(p, &key, "a tensor name string"))
			return false;
		if (!strcmp(key, "__metadata__")) {
			free(key);
			if (had_meta) {
				p->i = at;
				return perr(p, "__metadata__ appears twice");
			}
			had_meta = true;
			if (!expect(p, ':', "':'") || !parse_metadata(p))
				return false;
		} else {
			nb_safetensors *f = p->f;
			if (!grow((void **)&f->t, &f->cap, f->n + 1, sizeof *f->t)) {
				free(key);
				return nomem(p);
			}
			f->t[f->n] = (st_tensor){.name = key, .dtype = -1};
			int idx = f->n++;
			if (!expect(p, ':', "':'") || !parse_tensor(p, idx))
				return false;
		}
		if (!member_end(p, &more))
			return false;
	}
	ws(p);
	if (p->i != p->n)
		return perr(p, "unexpected %s after the header object",
		            describe(p, buf, sizeof buf));
	return true;
}

/* ---- validation ---------------------------------------------------------- */

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_meta(const void *a, const void *b)
{
	return strcmp((*(const st_meta *const *)a)->key, (*(const st_meta *const *)b)->key);
}

static int cmp_offset(const void *a, const void *b)
{
	const st_tensor *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

static nb_status check_unique(nb_safetensors *f, char *err, size_t errlen)
{
	char nb[128];
	if (f->n > 1) /* f->t is NULL without tensors */
		qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_name);
	for (int i = 1; i < f->n; i++)
		if (!strcmp(f->t[i - 1].name, f->t[i].name))
			return fail(err, errlen, f->label, NB_ERR_FORMAT,
			            "tensor \"%s\" appears twice",
			            shown(f->t[i].name, nb, sizeof nb));
	if (f->n_meta < 2)
		return NB_OK;
	/* sort pointers: the metadata keeps the file's order */
	st_meta **m = malloc(sizeof *m * (size_t)f->n_meta);
	if (!m)
		return fail(err, errlen, f->label, NB_ERR_NOMEM,
		            "out of memory reading the header");
	for (int i = 0; i < f->n_meta; i++)
		m[i] = &f->meta[i];
	qsort(m, (size_t)f->n_meta, sizeof *m, cmp_meta);
	nb_status st = NB_OK;
	for (int i = 1; i < f->n_meta && !st; i++)
		if (!strcmp(m[i - 1]->key, m[i]->key))
			st = fail(err, errlen, f->label, NB_ERR_FORMAT,
			          "__metadata__ key \"%s\" appears twice",
			          shown(m[i]->key, nb, sizeof nb));
	free(m);
	return st;
}

/* Each range as long as its shape says, inside the data; together they
 * tile the data exactly. */
static nb_status check_ranges(nb_safetensors *f, char *err, size_t errlen)
{
	char nb[128], nb2[128];
	for (int i = 0; i < f->n; i++) {
		const st_tensor *t = &f->t[i];
		const char *name = shown(t->name, nb, sizeof nb);
		uint64_t elems = 1, bits;
		bool ovf = false;
		for (int d = 0; d < t->ndim; d++)
			ovf |= __builtin_mul_overflow(elems, (uint64_t)t->shape[d], &elems);
		ovf |= __builtin_mul_overflow(elems, (uint64_t)dtypes[t->dtype].bits, &bits);
		if (ovf)
			return fail(err, errlen, f->label, NB_ERR_FORMAT,
			            "tensor \"%s\": the shape's size overflows", name);
		if (bits % 8)
			return fail(
			    err, errlen, f->label, NB_ERR_FORMAT,
			    "tensor \"%s\": %llu elements of %s are not a whole number of bytes",
			    name, (unsigned long long)elems, dtypes[t->dtype].name);
		if (t->end < t->begin)
			return fail(
			    err, errlen, f->label, NB_ERR_FORMAT,
			    "tensor \"%s\": data_offsets [%llu, %llu] end before they begin", name,
			    (unsigned long long)t->begin, (unsigned long long)t->end);
		if (t->end > f->data_len)
			return fail(
			    err, errlen, f->label, NB_ERR_FORMAT,
			    "tensor \"%s\": data_offsets [%llu, %llu] run past the end of the "
			    "data (%llu bytes)",
			    name, (unsigned long long)t->begin, (unsigned long long)t->end,
			    (unsigned long long)f->data_len);
		if (t->end - t->begin != bits / 8)
			return fail(err, errlen, f->label, NB_ERR_FORMAT,
			            "tensor \"%s\": %s with %llu elements needs %llu bytes, "
			            "data_offsets [%llu, %llu] hold %llu",
			            name, dtypes[t->dtype].name, (unsigned long long)elems,
			            (unsigned long long)(bits / 8), (unsigned long long)t->begin,
			            (unsigned long long)t->end,
			            (unsigned long long)(t->end - t->begin));
	}
	if (f->n > 1)
		qsort(f->t, (size_t)f->n, sizeof *f->t, cmp_offset);
	uint64_t at = 0;
	for (int i = 0; i < f->n; i++) {
		const st_tensor *t = &f->t[i];
		if (t->begin < at)
			return fail(err, errlen, f->label, NB_ERR_FORMAT,
			            "tensors \"%s\" and \"%s\" overlap",
			            shown(f->t[i - 1].name, nb, sizeof nb),
			            shown(t->name, nb2, sizeof nb2));
		if (t->begin > at)
			return fail(
			    err, errlen, f->label, NB_ERR_FORMAT,
			    "data bytes [%llu, %llu) before tensor \"%s\" belong to no tensor",
			    (unsigned long long)at, (unsigned long long)t->begin,
			    shown(t->name, nb, sizeof nb));
		at = t->end;
	}
	if (at != f->data_len)
		return fail(
		    err, errlen, f->label, NB_ERR_FORMAT,
		    "%llu trailing bytes after the last tensor (data ends at %llu, file has %llu)",
		    (unsigned long long)(f->data_len - at), (unsigned long long)at,
		    (unsigned long long)f->data_len);
	return NB_OK;
}

/* ---- entry points --------------------------------------------------------- */

void nb_safetensors_free(nb_safetensors *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n; i++) {
		free(f->t[i].name);
		free(f->t[i].shape);
	}
	for (int i = 0; i < f->n_meta; i++) {
		free(f->meta[i].key);
		free(f->meta[i].value);
	}
	if (f->fd >= 0)
		close(f->fd);
	free(f->t);
	free(f->meta);
	free(f->label);
	free(f);
}

static nb_safetensors *new_file(const char *label)
{
	nb_safetensors *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->fd = -1;
	if (!(f->label = strdup(label))) {
		free(f);
		return NULL;
	}
	return f;
}

/* Check the header length n8 against a file of total bytes. */
static nb_status check_prefix(const char *label, uint64_t total, uint64_t hlen, char *err,
                              size_t errlen)
{
	if (hlen > NB_ST_MAX_HEADER)
		return fail(
		    err, errlen, label, NB_ERR_FORMAT,
		    "header length %llu is absurd (more than %llu bytes): not a safetensors "
		    "file, or a corrupt one",
		    (unsigned long long)hlen, NB_ST_MAX_HEADER);
	if (hlen > total - 8)
		return fail(err, errlen, label, NB_ERR_FORMAT,
		            "header length %llu runs past the end of the file (%llu bytes): "
		            "truncated or not a safetensors file",
		            (unsigned long long)hlen, (unsigned long long)total);
	return NB_OK;
}

static nb_status too_short(const char *label, uint64_t total, char *err, size_t errlen)
{
	return fail(err, errlen, label, NB_ERR_FORMAT,
	            "%llu bytes is too short for a safetensors file (an 8-byte header length, "
	            "then the header)",
	            (unsigned long long)total);
}

/* Parse and validate the header hdr[0..hlen) of f, whose data holds
 * data_len bytes. */
static nb_status finish(nb_safetensors *f, const unsigned char *hdr, uint64_t hlen,
                        uint64_t data_len, char *err, size_t errlen)
{
	parser p = {.s = hdr, .n = (size_t)hlen, .f = f, .err = err, .errlen = errlen};
	f->data_off = 8 + hlen;
	f->data_len = data_len;
	if (!parse_header(&p))
		return p.st;
	nb_status st = check_unique(f, err, errlen);
	return st ? st : check_ranges(f, err, errlen);
}

nb_status nb_safetensors_parse(const void *buf, size_t len, nb_safetensors **out, char *err,
                               size_t errlen)
{
	if (!out)
		return fail(err, errlen, "<buffer>", NB_ERR_ARG,
		            "no place for the result (out is NULL)");
	*out = NULL;
	if (!buf && len)
		return fail(err, errlen, "<buffer>", NB_ERR_ARG, "buffer is NULL");
	const unsigned char *b = buf;
	if (len < 8)
		return too_short("<buffer>", len, err, errlen);
	uint64_t hlen = le64(b);
	nb_status st = check_prefix("<buffer>", len, hlen, err, errlen);
	if (st)
		return st;
	nb_safetensors *f = new_file("<buffer>");
	if (!f)
		return fail(err, errlen, "<buffer>", NB_ERR_NOMEM, "out of memory");
	f->mem = b + 8 + hlen;
	st = finish(f, b + 8, hlen, len - 8 - hlen, err, errlen);
	if (st) {
		nb_safetensors_free(f);
		return st;
	}
	*out = f;
	return NB_OK;
}

/* pread until n bytes or end of file; returns the bytes read, -1 on error */
static ssize_t pread_full(int fd, void *dst, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)dst + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

nb_status nb_safetensors_open(const char *path, nb_safetensors **out, char *err, size_t errlen)
{
	if (!out || !path)
		return fail(err, errlen, path ? path : "(null)", NB_ERR_ARG, "path or out is NULL");
	*out = NULL;
	/* a regular file only: a FIFO or device is refused without blocking */
	int fd;
	uint64_t total;
	nb_status st = nb__open_regular(path, &fd, &total, err, errlen);
	if (st != NB_OK)
		return st;
	nb_safetensors *f = NULL;
	unsigned char *hdr = NULL, b8[8];
	if (total < 8) {
		st = too_short(path, total, err, errlen);
		goto done;
	}
	if (pread_full(fd, b8, 8, 0) != 8) {
		st = fail(err, errlen, path, NB_ERR_IO, "cannot read: %s", strerror(errno));
		goto done;
	}
	uint64_t hlen = le64(b8);
	if ((st = check_prefix(path, total, hlen, err, errlen)))
		goto done;
	if (!(hdr = malloc(hlen ? hlen : 1)) || !(f = new_file(path))) {
		st = fail(err, errlen, path, NB_ERR_NOMEM, "out of memory for a %llu-byte header",
		          (unsigned long long)hlen);
		goto done;
	}
	ssize_t r = pread_full(fd, hdr, hlen, 8);
	if (r < 0 || (uint64_t)r != hlen) {
		st = fail(err, errlen, path, NB_ERR_IO, "cannot read the header: %s",
		          r < 0 ? strerror(errno) : "the file shrank");
		goto done;
	}
	if (!(st = finish(f, hdr, hlen, total - 8 - hlen, err, errlen))) {
		f->fd = fd;
		fd = -1;
		*out = f;
		f = NULL;
	}
done:
	free(hdr);
	nb_safetensors_free(f);
	if (fd >= 0)
		close(fd);
	return st;
}

int nb_safetensors_count(const nb_safetensors *f)
{
	return f ? f->n : 0;
}

nb_status nb_safetensors_tensor(const nb_safetensors *f, int i, nb_safetensors_info *info)
{
	if (!f || !info || i < 0 || i >= f->n)
		return NB_ERR_ARG;
	const st_tensor *t = &f->t[i];
	*info = (nb_safetensors_info){.name = t->name,
	                              .dtype = dtypes[t->dtype].name,
	                              .ndim = t->ndim,
	                              .shape = t->shape,
	                              .begin = t->begin,
	                              .end = t->end};
	return NB_OK;
}

int nb_safetensors_find(const nb_safetensors *f, const char *name)
{
	for (int i = 0; f && name && i < f->n; i++)
		if (!strcmp(f->t[i].name, name))
			return i;
	return -1;
}

nb_status nb_safetensors_read(const nb_safetensors *f, int i, void *dst, size_t n)
{
	if (!f || !dst || i < 0 || i >= f->n || n != f->t[i].end - f->t[i].begin)
		return NB_ERR_ARG;
	if (f->fd < 0) {
		memcpy(dst, f->mem + f->t[i].begin, n);
		return NB_OK;
	}
	ssize_t r = pread_full(f->fd, dst, n, f->data_off + f->t[i].begin);
	if (r < 0)
		return NB_ERR_IO;
	if ((size_t)r != n) {
		errno = EIO; /* the file shrank since it was opened */
		return NB_ERR_IO;
	}
	return NB_OK;
}

int nb_safetensors_num_meta(const nb_safetensors *f)
{
	return f ? f->n_meta : 0;
}

const char *nb_safetensors_meta_key(const nb_safetensors *f, int i)
{
	return f && i >= 0 && i < f->n_meta ? f->meta[i].key : NULL;
}

const char *nb_safetensors_meta_value(const nb_safetensors *f, int i)
{
	return f && i >= 0 && i < f->n_meta ? f->meta[i].value : NULL;
}

const char *nb_safetensors_meta(const nb_safetensors *f, const char *key)
{
	for (int i = 0; f && key && i < f->n_meta; i++)
		if (!strcmp(f->meta[i].key, key))
			return f->meta[i].value;
	return NULL;
}

/* ---- numbers in metadata -------------------------------------------------- */

/* Length of the JSON number at s (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?),
 * 0 if there is none; *integer tells whether it has no fraction or exponent. */
static size_t json_number(const char *s, bool *integer)
{
	size_t i = s[0] == '-';
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return 0;
	*integer = true;
	if (s[i] == '.') {
		*integer = false;
		if (!(s[++i] >= '0' && s[i] <= '9'))
			return 0;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (s[i] == 'e' || s[i] == 'E') {
		*integer = false;
		i += s[i + 1] == '+' || s[i + 1] == '-';
		if (!(s[++i] >= '0' && s[i] <= '9'))
			return 0;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i;
}

bool nb__parse_meta_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	bool integer;
	size_t n = s ? json_number(s, &integer) : 0;
	if (!n || s[n] || !integer)
		return false;
	/* accumulate negatively: INT64_MIN has no positive counterpart */
	bool neg = s[0] == '-';
	int64_t v = 0;
	for (const char *q = s + neg; *q; q++) {
		int d = *q - '0';
		if (v < (INT64_MIN + d) / 10)
			return false;
		v = v * 10 - d;
	}
	if (!neg && v == INT64_MIN)
		return false;
	v = neg ? v : -v;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool nb__parse_meta_number(const char *s, double min, double max, double *out)
{
	bool integer;
	size_t n = s ? json_number(s, &integer) : 0;
	if (!n || s[n])
		return false;
	errno = 0;
	double v = strtod(s, NULL);
	if (errno == ERANGE && fabs(v) > 1) /* overflow; underflow to 0 is fine */
		return false;
	if (!isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

nb_status nb_safetensors_meta_int(const nb_safetensors *f, const char *key, int64_t min,
                                  int64_t max, int64_t *out, char *err, size_t errlen)
{
	if (!f || !key || !out || min > max)
		return fail(err, errlen, f ? f->label : NULL, NB_ERR_ARG,
		            "nb_safetensors_meta_int: invalid arguments");
	const char *label = f->label, *s = nb_safetensors_meta(f, key);
	char kb[64], vb[64];
	if (!s)
		return fail(err, errlen, label, NB_ERR_FORMAT, "metadata %s is missing",
		            shown(key, kb, sizeof kb));
	if (!nb__parse_meta_int(s, min, max, out))
		return fail(err, errlen, label, NB_ERR_FORMAT,
		            "metadata %s \"%s\" is not an integer from %lld to %lld",
		            shown(key, kb, sizeof kb), shown(s, vb, sizeof vb), (long long)min,
		            (long long)max);
	return NB_OK;
}

nb_status nb_safetensors_meta_number(const nb_safetensors *f, const char *key, double min,
                                     double max, double *out, char *err, size_t errlen)
{
	if (!f || !key || !out || !(min <= max))
		return fail(err, errlen, f ? f->label : NULL, NB_ERR_ARG,
		            "nb_safetensors_meta_number: invalid arguments");
	const char *label = f->label, *s = nb_safetensors_meta(f, key);
	char kb[64], vb[64];
	if (!s)
		return fail(err, errlen, label, NB_ERR_FORMAT, "metadata %s is missing",
		            shown(key, kb, sizeof kb));
	if (!nb__parse_meta_number(s, min, max, out))
		return fail(err, errlen, label, NB_ERR_FORMAT,
		            "metadata %s \"%s\" is not a decimal number from %g to %g",
		            shown(key, kb, sizeof kb), shown(s, vb, sizeof vb), min, max);
	return NB_OK;
}

nb_status nb_safetensors_meta_numbers(const nb_safetensors *f, const char *key, double min,
                                      double max, double *out, size_t n, char *err, size_t errlen)
{
	if (!f || !key || (!out && n) || !(min <= max))
		return fail(err, errlen, f ? f->label : NULL, NB_ERR_ARG,
		            "nb_safetensors_meta_numbers: invalid arguments");
	const char *label = f->label, *s = nb_safetensors_meta(f, key);
	char kb[64], vb[64];
	if (!s)
		return fail(err, errlen, label, NB_ERR_FORMAT, "metadata %s is missing",
		            shown(key, kb, sizeof kb));
	const char *p = s;
	size_t k = 0;
	for (; *p && k < n; k++) {
		/* one element: a JSON number of at most 63 characters, or null */
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char tok[64];
		if (len >= sizeof tok)
			break;
		memcpy(tok, p, len);
		tok[len] = 0;
		if (!strcmp(tok, "null"))
			out[k] = NAN;
		else if (!nb__parse_meta_number(tok, min, max, &out[k]))
			break;
		p += len;
		if (*p == ',' && k + 1 < n)
			p++;
		else if (*p)
			break;
	}
	if (k == n && !*p)
		return NB_OK;
	return fail(err, errlen, label, NB_ERR_FORMAT,
	            "metadata %s \"%s\" is not %zu comma-separated numbers from %g to %g (or null)",
	            shown(key, kb, sizeof kb), shown(s, vb, sizeof vb), n, min, max);
}
