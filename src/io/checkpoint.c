/*
 * Checkpoints: a graph's parameters and state leaves, its RNG and its
 * optimizer's step count, saved atomically as safetensors and loaded back
 * with every name, shape and dtype checked before anything is changed.
 */
#include "io/safetensors.h"
#include "io/wfile.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void (*nb__checkpoint_write_hook)(size_t bytes_written);

/* metadata keys written by nabla; callers may not reuse them */
static const char *const reserved_keys[] = {"format", "nabla_version", "model",     "dtype",
                                            "step",   "rng",           "optimizer", "lr"};

static nb_status lfail(nb_graph *g, const char *label, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static nb_status lfail(nb_graph *g, const char *label, nb_status st, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	nb__fail(g, st, "%s: %s", label, msg);
	return st;
}

static const char *st_dtype(nb_dtype t)
{
	return t == NB_F64 ? "F64" : "F32";
}

/* The leaves a checkpoint holds: parameters and state, in graph order. */
static int saved_leaves(const nb_graph *g, nb_tensor ***out)
{
	nb_tensor **v = malloc(sizeof *v * (size_t)(g->n_nodes ? g->n_nodes : 1));
	int n = 0;
	if (!v)
		return -1;
	for (int i = 0; i < g->n_nodes; i++) {
		nb_tensor *t = g->nodes[i];
		if ((t->role == NB_ROLE_PARAM || t->role == NB_ROLE_STATE) &&
		    (nb__ops[t->op]->flags & NB_OPF_LEAF) && t->data && !nb__is_placeholder(t))
			v[n++] = t;
	}
	*out = v;
	return n;
}

static int cmp_tensor_name(const void *a, const void *b)
{
	return strcmp((*(nb_tensor *const *)a)->name, (*(nb_tensor *const *)b)->name);
}

/* Sort leaves by name; fails on two leaves with one name (ambiguous). */
static nb_status sort_unique(nb_graph *g, const char *label, nb_tensor **v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_tensor_name);
	for (int i = 1; i < n; i++)
		if (!strcmp(v[i - 1]->name, v[i]->name))
			return lfail(g, label, NB_ERR_GRAPH,
			             "the model has two %s tensors named \"%s\"; checkpoints match "
			             "tensors by name, so give them distinct names",
			             v[i]->role == NB_ROLE_STATE ? "state" : "parameter",
			             v[i]->name);
	return NB_OK;
}

/* ---- a growing text buffer for the header -------------------------------- */

typedef struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 1024;
		while (nc < b->n + n + 1)
			nc *= 2;
		char *q = realloc(b->p, nc);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (k >= 0 && (size_t)k < sizeof tmp)
		sb_put(b, tmp, (size_t)k);
	else
		b->oom = true; /* callers only format short numbers */
}

/* A JSON string: quotes, backslashes and control bytes escaped; other
 * bytes (valid UTF-8, checked by the caller) copied. */
static void sb_json(sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (const char *q = s; *q; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sb_put(b, e, 2);
		} else if (c < 0x20)
			sb_printf(b, "\\u%04x", c);
		else
			sb_put(b, q, 1);
	}
	sb_put(b, "\"", 1);
}

static void sb_meta(sbuf *b, const char *key, const char *value)
{
	if (b->n > 0 && b->p[b->n - 1] != '{')
		sb_put(b, ",", 1);
	sb_json(b, key);
	sb_put(b, ":", 1);
	sb_json(b, value);
}

/* ---- saving ------------------------------------------------------------------ */

static bool is_reserved(const char *key)
{
	for (size_t i = 0; i < sizeof reserved_keys / sizeof *reserved_keys; i++)
		if (!strcmp(key, reserved_keys[i]))
			return true;
	return false;
}

static bool utf8(const char *s)
{
	return nb__utf8_valid(s, strlen(s));
}

static nb_status check_extra_meta(nb_graph *g, const char *path, const nb_checkpoint_opts *opts)
{
	if (!opts || opts->n_meta == 0)
		return NB_OK;
	if (opts->n_meta < 0 || !opts->meta)
		return lfail(g, path, NB_ERR_ARG, "checkpoint metadata: %d pairs at %p",
		             opts->n_meta, (const void *)opts->meta);
	for (int i = 0; i < opts->n_meta; i++) {
		const char *k = opts->meta[2 * i], *v = opts->meta[2 * i + 1];
		if (!k || !v)
			return lfail(g, path, NB_ERR_ARG,
			             "checkpoint metadata pair %d has a NULL %s", i,
			             k ? "value" : "key");
		if (is_reserved(k))
			return lfail(g, path, NB_ERR_ARG,
			             "checkpoint metadata key \"%s\" is reserved for nabla", k);
		if (!utf8(k) || !utf8(v))
			return lfail(g, path, NB_ERR_ARG,
			             "checkpoint metadata pair %d is not valid UTF-8", i);
		for (int j = 0; j < i; j++)
			if (!strcmp(opts->meta[2 * j], k))
				return lfail(g, path, NB_ERR_ARG,
				             "checkpoint metadata key \"%s\" is given twice", k);
	}
	return NB_OK;
}

/* The header JSON, padded with spaces so the data starts 8-aligned. */
static void build_header(sbuf *b, nb_graph *g, nb_optim *o, const char *model,
                         const nb_checkpoint_opts *opts, nb_tensor **v, int n)
{
	char num[96];
	sb_put(b, "{\"__metadata__\":{", 17);
	sb_meta(b, "format", "nabla");
	sb_meta(b, "nabla_version", nb_version());
	if (model)
		sb_meta(b, "model", model);
	sb_meta(b, "dtype", st_dtype(g->dtype));
	snprintf(num, sizeof num, "%016llx,%016llx,%016llx,%016llx", (unsigned long long)g->rng[0],
	         (unsigned long long)g->rng[1], (unsigned long long)g->rng[2],
	         (unsigned long long)g->rng[3]);
	sb_meta(b, "rng", num);
	if (o) {
		sb_meta(b, "optimizer", nb_optim_kind_name(nb_optim_kind_of(o)));
		snprintf(num, sizeof num, "%lld", (long long)nb_optim_steps(o));
		sb_meta(b, "step", num);
		snprintf(num, sizeof num, "%.17g", nb_optim_lr(o));
		sb_meta(b, "lr", num);
	}
	for (int i = 0; opts && i < opts->n_meta; i++)
		sb_meta(b, opts->meta[2 * i], opts->meta[2 * i + 1]);
	sb_put(b, "}", 1);
	uint64_t off = 0;
	for (int i = 0; i < n; i++) {
		sb_put(b, ",", 1);
		sb_json(b, v[i]->name);
		sb_printf(b, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype(g->dtype));
		for (int d = 0; d < v[i]->shape.ndim; d++)
			sb_printf(b, d ? ",%lld" : "%lld", (long long)v[i]->shape.d[d]);
		uint64_t bytes = (uint64_t)v[i]->size * g->esize;
		sb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
		          (unsigned long long)(off + bytes));
		off += bytes;
	}
	sb_put(b, "}", 1);
	while ((8 + b->n) % 8)
		sb_put(b, " ", 1);
}

static bool write_tensor(FILE *fp, const nb_tensor *t, size_t esize)
{
	if (nb__host_is_le())
		return fwrite(t->data, esize, (size_t)t->size, fp) == (size_t)t->size;
	/* big-endian host: swap a chunk at a time */
	unsigned char tmp[4096];
	size_t per = sizeof tmp / esize, done = 0, n = (size_t)t->size;
	while (done < n) {
		size_t k = n - done < per ? n - done : per;
		memcpy(tmp, (const char *)t->data + done * esize, k * esize);
		nb__bswap_elems(tmp, k, esize);
		if (fwrite(tmp, esize, k, fp) != k)
			return false;
		done += k;
	}
	return true;
}

/* Written through nb__wfile: to a temporary file renamed over the target
 * of path (its links followed), so a kill leaves the old file intact. */
static nb_status write_atomic(nb_graph *g, const char *path, const sbuf *hdr, nb_tensor **v, int n)
{
	char err[640];
	nb__wfile w;
	if (nb__wfile_open(&w, path, false, err, sizeof err) != 0)
		return lfail(g, path, NB_ERR_IO, "cannot open for writing: %s", err);
	FILE *fp = w.fp;
	unsigned char b8[8];
	for (int i = 0; i < 8; i++)
		b8[i] = (unsigned char)((uint64_t)hdr->n >> (8 * i));
	size_t written = 8 + hdr->n;
	bool ok = fwrite(b8, 1, 8, fp) == 8 && fwrite(hdr->p, 1, hdr->n, fp) == hdr->n;
	if (ok && nb__checkpoint_write_hook)
		nb__checkpoint_write_hook(written);
	for (int i = 0; i < n && ok; i++) {
		ok = write_tensor(fp, v[i], g->esize);
		written += (size_t)v[i]->size * g->esize;
		if (ok && nb__checkpoint_write_hook)
			nb__checkpoint_write_hook(written);
	}
	if (!ok) {
		lfail(g, path, NB_ERR_IO, "write of the temporary file %s failed: %s", w.tmp,
		      strerror(errno));
		nb__wfile_abort(&w);
		return NB_ERR_IO;
	}
	return nb__wfile_commit(&w, err, sizeof err) ? lfail(g, path, NB_ERR_IO, "%s", err) : NB_OK;
}

nb_status nb_checkpoint_save_opts(nb_graph *g, nb_optim *o, const char *path,
                                  const char *model_name, nb_checkpoint_opts opts)
{
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	if (!path || !*path) {
		nb__fail(g, NB_ERR_ARG, "checkpoint save: no path");
		return NB_ERR_ARG;
	}
	if (o && nb_optim_graph(o) != g)
		return lfail(g, path, NB_ERR_GRAPH, "the optimizer belongs to another graph");
	if (model_name && !utf8(model_name))
		return lfail(g, path, NB_ERR_ARG, "the model name is not valid UTF-8");
	nb_status st = check_extra_meta(g, path, &opts);
	if (st)
		return st;
	nb_tensor **v, **sorted = NULL;
	int n = saved_leaves(g, &v);
	if (n < 0 || !(sorted = malloc(sizeof *sorted * (size_t)(n ? n : 1)))) {
		if (n >= 0)
			free(v);
		return lfail(g, path, NB_ERR_NOMEM, "out of memory");
	}
	memcpy(sorted, v, sizeof *v * (size_t)n);
	st = sort_unique(g, path, sorted, n);
	for (int i = 0; i < n && !st; i++) {
		if (!strcmp(v[i]->name, "__metadata__"))
			st = lfail(
			    g, path, NB_ERR_ARG,
			    "a tensor may not be called __metadata__ (reserved by the format)");
		else if (!utf8(v[i]->name))
			st = lfail(g, path, NB_ERR_ARG, "the name of tensor %d is not valid UTF-8",
			           v[i]->id);
	}
	sbuf hdr = {0};
	if (!st) {
		build_header(&hdr, g, o, model_name, &opts, v, n);
		st = hdr.oom ? lfail(g, path, NB_ERR_NOMEM, "out of memory for the header")
		             : write_atomic(g, path, &hdr, v, n);
	}
	free(hdr.p);
	free(sorted);
	free(v);
	return st;
}

nb_status nb_checkpoint_save(nb_graph *g, nb_optim *o, const char *path, const char *model_name)
{
	return nb_checkpoint_save_opts(g, o, path, model_name, (nb_checkpoint_opts){0});
}

/* ---- loading -------------------------------------------------------------- */

typedef struct restored {
	bool have_rng, have_step, have_lr;
	uint64_t rng[4];
	int64_t step;
	double lr;
} restored;

static bool parse_rng(const char *s, uint64_t r[4])
{
	if (strlen(s) != 4 * 16 + 3)
		return false;
	uint64_t any = 0;
	for (int w = 0; w < 4; w++) {
		const char *q = s + w * 17;
		if (w < 3 && q[16] != ',')
			return false;
		r[w] = 0;
		for (int k = 0; k < 16; k++) {
			char c = q[k];
			int h = c >= '0' && c <= '9'   ? c - '0'
			        : c >= 'a' && c <= 'f' ? c - 'a' + 10
			                               : -1;
			if (h < 0)
				return false;
			r[w] = r[w] << 4 | (uint64_t)h;
		}
		any |= r[w];
	}
	return any != 0; /* xoshiro never leaves the all-zero state */
}

/* Read the metadata we restore; every present value must be well-formed.
 * The model name comes first: a checkpoint of another model is reported as
 * that, not as whatever difference its tensors or optimizer show. */
static nb_status read_meta(nb_graph *g, nb_optim *o, const nb_safetensors *f, const char *label,
                           const char *model, unsigned flags, restored *r)
{
	char vb[96];
	const char *s = nb_safetensors_meta(f, "model");
	if (model && s && strcmp(s, model))
		return lfail(g, label, NB_ERR_FORMAT, "the checkpoint is of model \"%s\", not %s",
		             nb__shown(s, vb, sizeof vb), model);
	if (flags & NB_CKPT_MODEL_ONLY)
		return NB_OK;
	s = nb_safetensors_meta(f, "rng");
	if (s && !(r->have_rng = parse_rng(s, r->rng)))
		return lfail(g, label, NB_ERR_FORMAT,
		             "metadata rng \"%s\" is not 4 comma-separated 16-digit hex words "
		             "(not all zero)",
		             nb__shown(s, vb, sizeof vb));
	if (!o)
		return NB_OK;
	const char *kind = nb_safetensors_meta(f, "optimizer");
	const char *name = nb_optim_kind_name(nb_optim_kind_of(o));
	if (kind && strcmp(kind, name))
		return lfail(g, label, NB_ERR_FORMAT,
		             "the checkpoint was saved with optimizer %s, this one is %s",
		             nb__shown(kind, vb, 48), name);
	if ((s = nb_safetensors_meta(f, "step")) &&
	    !(r->have_step = nb__parse_meta_int(s, 0, NB_OPTIM_MAX_STEPS, &r->step)))
		return lfail(g, label, NB_ERR_FORMAT,
		             "metadata step \"%s\" is not an integer from 0 to %lld",
		             nb__shown(s, vb, 48), (long long)NB_OPTIM_MAX_STEPS);
	if ((s = nb_safetensors_meta(f, "lr")) &&
	    !(r->have_lr = nb__parse_meta_number(s, 0, DBL_MAX, &r->lr)))
		return lfail(g, label, NB_ERR_FORMAT,
		             "metadata lr \"%s\" is not a finite non-negative decimal number",
		             nb__shown(s, vb, 48));
	return NB_OK;
}

static void shape_text(const int64_t *d, int n, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)d[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}

/* Does file tensor info fit leaf t? */
static nb_status check_fit(nb_graph *g, const char *label, const nb_safetensors_info *in,
                           const nb_tensor *t, unsigned flags)
{
	char fs[256], ms[256];
	bool f32 = !strcmp(in->dtype, "F32"), f64 = !strcmp(in->dtype, "F64");
	if (!f32 && !f64)
		return lfail(g, label, NB_ERR_DTYPE,
		             "%s: the checkpoint stores %s; nabla reads F32 and F64 only", t->name,
		             in->dtype);
	if ((f64 ? NB_F64 : NB_F32) != g->dtype && !(flags & NB_CKPT_CONVERT))
		return lfail(g, label, NB_ERR_DTYPE,
		             "%s: checkpoint has %s, model is %s (load with NB_CKPT_CONVERT to "
		             "convert)",
		             t->name, in->dtype, st_dtype(g->dtype));
	bool same = in->ndim == t->shape.ndim;
	for (int d = 0; same && d < in->ndim; d++)
		same = in->shape[d] == t->shape.d[d];
	if (!same) {
		shape_text(in->shape, in->ndim, fs, sizeof fs);
		shape_text(t->shape.d, t->shape.ndim, ms, sizeof ms);
		return lfail(g, label, NB_ERR_SHAPE, "%s: checkpoint has %s, model has %s", t->name,
		             fs, ms);
	}
	return NB_OK;
}

/* An F64 file tensor i for f32 leaf t (NB_CKPT_CONVERT): every finite value
 * must stay finite as a float (1e300 would become inf).  Read and checked
 * before the graph changes; NaN and inf are carried over as they are, as
 * a same-dtype load carries them. */
static nb_status narrows(nb_graph *g, const char *label, const nb_safetensors *f, int i,
                         const nb_tensor *t)
{
	nb_safetensors_info in;
	nb_safetensors_tensor(f, i, &in);
	if (strcmp(in.dtype, "F64") || g->esize != 4)
		return NB_OK;
	size_t n = (size_t)t->size;
	double *buf = malloc(n ? n * 8 : 1);
	if (!buf)
		return lfail(g, label, NB_ERR_NOMEM, "%s: out of memory", t->name);
	nb_status st = NB_OK;
	if (nb_safetensors_read(f, i, buf, n * 8) != NB_OK)
		st = lfail(g, label, NB_ERR_IO, "%s: reading the data failed: %s", t->name,
		           strerror(errno));
	else if (!nb__host_is_le())
		nb__bswap_elems(buf, n, 8);
	for (size_t k = 0; k < n && !st; k++)
		if (isfinite(buf[k]) && !isfinite((float)buf[k]))
			st = lfail(g, label, NB_ERR_VALUE,
			           "%s: element %zu is %g, beyond float32's range: the float32 "
			           "model cannot hold it",
			           t->name, k, buf[k]);
	free(buf);
	return st;
}

/* Copy file tensor i into leaf t, converting byte order and dtype. */
static nb_status copy_in(nb_graph *g, const char *label, const nb_safetensors *f, int i,
                         nb_tensor *t)
{
	nb_safetensors_info in;
	nb_safetensors_tensor(f, i, &in);
	size_t fes = !strcmp(in.dtype, "F64") ? 8 : 4, n = (size_t)t->size;
	bool same = fes == g->esize;
	void *buf = same ? t->data : malloc(n * fes);
	if (!buf)
		return lfail(g, label, NB_ERR_NOMEM, "%s: out of memory", t->name);
	if (nb_safetensors_read(f, i, buf, n * fes) != NB_OK) {
		if (!same)
			free(buf);
		return lfail(g, label, NB_ERR_IO, "%s: reading the data failed: %s", t->name,
		             strerror(errno));
	}
	if (!nb__host_is_le())
		nb__bswap_elems(buf, n, fes);
	if (!same) {
		for (size_t k = 0; k < n; k++)
			nb__set(t, (int64_t)k,
			        fes == 8 ? ((double *)buf)[k] : (double)((float *)buf)[k]);
		free(buf);
	}
	return NB_OK;
}

/* Match file tensors to leaves: src[k] = file index of leaf v[k], or -1. */
static nb_status match(nb_graph *g, const nb_safetensors *f, const char *label, unsigned flags,
                       nb_tensor **v, int n, int *src)
{
	for (int k = 0; k < n; k++)
		src[k] = -1;
	for (int i = 0; i < nb_safetensors_count(f); i++) {
		nb_safetensors_info in;
		nb_safetensors_tensor(f, i, &in);
		nb_tensor key = {.name = (char *)in.name}, *kp = &key;
		nb_tensor **hit = bsearch(&kp, v, (size_t)n, sizeof *v, cmp_tensor_name);
		bool model_only = flags & NB_CKPT_MODEL_ONLY;
		if (!hit) {
			if (model_only)
				continue; /* e.g. optimizer state of the training run */
			char nb[200];
			return lfail(g, label, NB_ERR_FORMAT,
			             "tensor \"%s\" in the checkpoint is not a parameter or state "
			             "of the model",
			             nb__shown(in.name, nb, sizeof nb));
		}
		if (model_only && !NB__MODEL_LEAF(*hit))
			continue;
		nb_status st = check_fit(g, label, &in, *hit, flags);
		if (st)
			return st;
		src[hit - v] = i;
	}
	int missing = 0, first = -1;
	for (int k = 0; k < n; k++)
		if (src[k] < 0 && (NB__MODEL_LEAF(v[k]) || !(flags & NB_CKPT_MODEL_ONLY))) {
			if (first < 0 || v[k]->id < v[first]->id)
				first = k;
			missing++;
		}
	if (missing)
		return lfail(g, label, NB_ERR_FORMAT,
		             "the model's %s %s is not in the checkpoint (%d tensor%s missing)",
		             v[first]->role == NB_ROLE_STATE ? "state tensor" : "parameter",
		             v[first]->name, missing, missing == 1 ? "" : "s");
	return NB_OK;
}

static nb_status apply(nb_graph *g, nb_optim *o, const nb_safetensors *f, const char *label,
                       unsigned flags, const char *model, char *model_out, size_t len)
{
	if (o && nb_optim_graph(o) != g)
		return lfail(g, label, NB_ERR_GRAPH, "the optimizer belongs to another graph");
	restored r = {0};
	nb_status st = read_meta(g, o, f, label, model, flags, &r);
	if (st)
		return st;
	nb_tensor **v;
	int n = saved_leaves(g, &v), *src = NULL;
	if (n < 0 || !(src = malloc(sizeof *src * (size_t)(n ? n : 1)))) {
		if (n >= 0)
			free(v);
		return lfail(g, label, NB_ERR_NOMEM, "out of memory");
	}
	st = sort_unique(g, label, v, n);
	if (!st)
		st = match(g, f, label, flags, v, n, src);
	for (int k = 0; k < n && !st; k++)
		if (src[k] >= 0)
			st = narrows(g, label, f, src[k], v[k]);
	/* everything is checked: now change the graph */
	for (int k = 0; k < n && !st; k++)
		if (src[k] >= 0)
			st = copy_in(g, label, f, src[k], v[k]);
	free(src);
	free(v);
	if (st)
		return st;
	if (r.have_rng)
		memcpy(g->rng, r.rng, sizeof g->rng);
	if (r.have_step)
		nb_optim_set_steps(o, r.step); /* read_meta checked the range */
	if (r.have_lr)
		nb_optim_set_lr(o, r.lr);
	if (model_out && len) {
		const char *m = nb_safetensors_meta(f, "model");
		snprintf(model_out, len, "%s", m ? m : "");
	}
	return NB_OK;
}

nb_status nb__checkpoint_apply(nb_graph *g, nb_optim *o, const nb_safetensors *f, const char *label,
                               unsigned flags, char *model_out, size_t len)
{
	return apply(g, o, f, label, flags, NULL, model_out, len);
}

nb_status nb_checkpoint_load_opts(nb_graph *g, nb_optim *o, const char *path, char *model_name_out,
                                  size_t len, nb_checkpoint_opts opts)
{
	if (model_name_out && len)
		model_name_out[0] = 0;
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	if (!path || !*path) {
		nb__fail(g, NB_ERR_ARG, "checkpoint load: no path");
		return NB_ERR_ARG;
	}
	char err[768];
	nb_safetensors *f;
	nb_status st = nb_safetensors_open(path, &f, err, sizeof err);
	if (st) {
		nb__fail(g, st, "%s", err);
		return st;
	}
	st = apply(g, o, f, path, opts.flags, opts.model, model_name_out, len);
	nb_safetensors_free(f);
	return st;
}

nb_status nb_checkpoint_load(nb_graph *g, nb_optim *o, const char *path, char *model_name_out,
                             size_t len)
{
	return nb_checkpoint_load_opts(g, o, path, model_name_out, len, (nb_checkpoint_opts){0});
}
