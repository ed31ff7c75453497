/*
 * Parameters from any safetensors file (nb_init_from): a graph's
 * parameters and batch-normalisation running statistics filled by name,
 * under nabla's names or PyTorch's, with every shape, dtype and value
 * checked before anything is changed.
 *
 * The name rule (docs/checkpoint.md, "Weights from PyTorch"): a tensor of
 * the graph called P.w is looked up as P.w, then as P.weight; P.b as P.bias;
 * a batchnorm's P.gamma as P.weight and P.beta as P.bias; P.running_mean and
 * P.running_var keep their names.  A file name beginning with "module."
 * (nn.DataParallel) is read without it.  Tensors of the file no graph
 * tensor asks for (num_batches_tracked, optimizer state) are left alone.
 */
#include "io/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static nb_status ifail(nb_graph *g, const char *path, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static nb_status ifail(nb_graph *g, const char *path, nb_status st, const char *fmt, ...)
{
	char msg[900], shown[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	nb__fail(g, st, "init from %s: %s", nb__shown(path, shown, sizeof shown), msg);
	return st;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* The tensors a file initialises: parameters, and the model's state
 * leaves (batchnorm running statistics; not optimizer state). */
static bool wanted(const nb_tensor *t)
{
	if (!(nb__ops[t->op]->flags & NB_OPF_LEAF) || !t->data || !t->name || nb__is_placeholder(t))
		return false;
	return NB__MODEL_LEAF(t);
}

/* name's PyTorch spelling in buf (n bytes), or NULL when it has none */
static const char *torch_name(const char *name, char *buf, size_t n)
{
	static const char *const map[][2] = {
	    {".w", ".weight"}, {".b", ".bias"}, {".gamma", ".weight"}, {".beta", ".bias"}};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (ends_with(name, map[i][0])) {
			size_t stem = strlen(name) - strlen(map[i][0]);
			if ((size_t)snprintf(buf, n, "%.*s%s", (int)stem, name, map[i][1]) >= n)
				return NULL;
			return buf;
		}
	return NULL;
}

/* the file's tensor called name, with or without "module." in front */
static int find(const nb_safetensors *f, const char *name)
{
	int i = nb_safetensors_find(f, name);
	if (i >= 0)
		return i;
	char buf[512];
	if ((size_t)snprintf(buf, sizeof buf, "module.%s", name) >= sizeof buf)
		return -1;
	return nb_safetensors_find(f, buf);
}

/* Levenshtein distance, names of up to 255 bytes (longer ones are far) */
static int distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	if (n > 255 || m > 255)
		return 1000;
	int row[256];
	for (size_t j = 0; j <= m; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= m; j++) {
			int up = row[j], v = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < v)
				v = up + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			diag = up;
			row[j] = v;
		}
	}
	return row[m];
}

static void shape_text(const int64_t *d, int n, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "[");
	for (int i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(buf + k, len - k, i ? ",%lld" : "%lld", (long long)d[i]);
	if (k < len)
		snprintf(buf + k, len - k, "]");
}

/* "the closest names in the file: a [2,3], b [4]" for a missing tensor */
static nb_status missing(nb_graph *g, const char *path, const nb_safetensors *f, const nb_tensor *t,
                         const char *tname)
{
	enum { K = 3 };
	int best[K], bd[K], nb = 0;
	for (int i = 0; i < nb_safetensors_count(f); i++) {
		nb_safetensors_info in;
		nb_safetensors_tensor(f, i, &in);
		const char *s = strncmp(in.name, "module.", 7) ? in.name : in.name + 7;
		int d = distance(t->name, s);
		if (tname && distance(tname, s) < d)
			d = distance(tname, s);
		/* at equal distance, a name of the same shape first */
		bool fits = in.ndim == t->shape.ndim;
		for (int k = 0; fits && k < in.ndim; k++)
			fits = in.shape[k] == t->shape.d[k];
		d = 2 * d + !fits;
		int k = nb < K ? nb++ : K;
		if (k == K && d >= bd[K - 1])
			continue;
		if (k == K)
			k = K - 1;
		while (k > 0 && bd[k - 1] > d) {
			best[k] = best[k - 1], bd[k] = bd[k - 1];
			k--;
		}
		best[k] = i, bd[k] = d;
	}
	char list[640] = "", shape[96], shown[160], ms[96];
	size_t len = 0;
	for (int k = 0; k < nb && len < sizeof list; k++) {
		nb_safetensors_info in;
		nb_safetensors_tensor(f, best[k], &in);
		shape_text(in.shape, in.ndim, shape, sizeof shape);
		len += (size_t)snprintf(list + len, sizeof list - len, "%s%s %s", k ? ", " : "",
		                        nb__shown(in.name, shown, sizeof shown), shape);
	}
	shape_text(t->shape.d, t->shape.ndim, ms, sizeof ms);
	return ifail(g, path, NB_ERR_FORMAT,
	             "the model's %s %s %s is not in the file (looked for %s%s%s); %s%s",
	             t->role == NB_ROLE_PARAM ? "parameter" : "running statistic", t->name, ms,
	             t->name, tname ? " or " : "", tname ? tname : "",
	             nb ? "the closest names there: " : "the file holds no tensors", list);
}

/* IEEE half and bfloat16 to double */
static double half(uint16_t h)
{
	int e = (h >> 10) & 0x1f, m = h & 0x3ff;
	double v = e == 0    ? ldexp(m, -24)
	           : e == 31 ? (m ? NAN : INFINITY)
	                     : ldexp(m | 0x400, e - 25);
	return h & 0x8000 ? -v : v;
}

static double bf16(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float v;
	memcpy(&v, &u, sizeof v);
	return v;
}

/* the element width of the dtypes nabla converts, 0 for the others */
static size_t width(const char *dtype)
{
	return !strcmp(dtype, "F64")                             ? 8
	       : !strcmp(dtype, "F32")                           ? 4
	       : !strcmp(dtype, "F16") || !strcmp(dtype, "BF16") ? 2
	                                                         : 0;
}

/* file tensor i (checked to fit t) as doubles in out[t->size]; a value that
 * is not finite, or not finite once rounded to a float32 graph's type, is
 * an error naming the tensor and the element */
static nb_status read_values(nb_graph *g, const char *path, const nb_safetensors *f, int i,
                             const nb_tensor *t, double *out)
{
	nb_safetensors_info in;
	nb_safetensors_tensor(f, i, &in);
	size_t w = width(in.dtype), n = (size_t)t->size;
	unsigned char *raw = malloc(n * w > 0 ? n * w : 1);
	char shown[160];
	if (!raw)
		return ifail(g, path, NB_ERR_NOMEM, "%s: out of memory", t->name);
	if (nb_safetensors_read(f, i, raw, n * w) != NB_OK) {
		free(raw);
		return ifail(g, path, NB_ERR_IO, "%s: reading the data failed: %s",
		             nb__shown(in.name, shown, sizeof shown), strerror(errno));
	}
	if (!nb__host_is_le())
		nb__bswap_elems(raw, n, w);
	for (size_t k = 0; k < n; k++) {
		const unsigned char *p = raw + k * w;
		if (w == 8) {
			memcpy(&out[k], p, 8);
		} else if (w == 4) {
			float v;
			memcpy(&v, p, 4);
			out[k] = v;
		} else {
			uint16_t h;
			memcpy(&h, p, 2);
			out[k] = in.dtype[0] == 'B' ? bf16(h) : half(h);
		}
		if (!isfinite(out[k])) {
			free(raw);
			return ifail(g, path, NB_ERR_VALUE,
			             "%s: element %zu is %s; the model's %s must be finite",
			             nb__shown(in.name, shown, sizeof shown), k,
			             isnan(out[k]) ? "NaN" : "infinite", t->name);
		}
		if (g->dtype == NB_F32 && !isfinite((float)out[k])) { /* would round to inf */
			free(raw);
			return ifail(
			    g, path, NB_ERR_VALUE,
			    "%s: element %zu is %g, beyond float32's range; the model's %s "
			    "is float32 (build it in float64 to load it)",
			    nb__shown(in.name, shown, sizeof shown), k, out[k], t->name);
		}
	}
	free(raw);
	return NB_OK;
}

static const char *name_of(const nb_safetensors *f, int i)
{
	nb_safetensors_info in;
	nb_safetensors_tensor(f, i, &in);
	return in.name;
}

/* the file tensor for graph tensor t: its index, or -1 after an error */
static int locate(nb_graph *g, const char *path, const nb_safetensors *f, const nb_tensor *t,
                  bool *renamed)
{
	char tb[512], shown[160], fs[96], ms[96];
	const char *tname = torch_name(t->name, tb, sizeof tb);
	int i = find(f, t->name);
	*renamed = false;
	if (i < 0 && tname && (i = find(f, tname)) >= 0)
		*renamed = true;
	if (i < 0) {
		missing(g, path, f, t, tname);
		return -1;
	}
	nb_safetensors_info in;
	nb_safetensors_tensor(f, i, &in);
	nb__shown(in.name, shown, sizeof shown);
	if (!width(in.dtype)) {
		ifail(g, path, NB_ERR_DTYPE,
		      "%s (for the model's %s) is %s; nabla reads F32, F64, F16 and BF16", shown,
		      t->name, in.dtype);
		return -1;
	}
	bool same = in.ndim == t->shape.ndim;
	for (int d = 0; same && d < in.ndim; d++)
		same = in.shape[d] == t->shape.d[d];
	if (!same) {
		shape_text(in.shape, in.ndim, fs, sizeof fs);
		shape_text(t->shape.d, t->shape.ndim, ms, sizeof ms);
		ifail(g, path, NB_ERR_SHAPE, "%s has shape %s, the model's %s is %s", shown, fs,
		      t->name, ms);
		return -1;
	}
	return i;
}

nb_status nb_init_from(nb_graph *g, const char *path, nb_init_from_report *report)
{
	if (report)
		*report = (nb_init_from_report){0};
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	if (!path || !*path) {
		nb__fail(g, NB_ERR_ARG, "init from: no path");
		return NB_ERR_ARG;
	}
	char err[768];
	nb_safetensors *f;
	nb_status st = nb_safetensors_open(path, &f, err, sizeof err);
	if (st) {
		nb__fail(g, st, "init from %s", err);
		return st;
	}
	int n = 0, renamed = 0;
	for (int k = 0; k < g->n_nodes; k++)
		n += wanted(g->nodes[k]);
	nb_tensor **v = malloc(sizeof *v * (size_t)(n ? n : 1));
	double **vals = calloc((size_t)(n ? n : 1), sizeof *vals);
	int *used = calloc((size_t)nb_safetensors_count(f) + 1, sizeof *used);
	if (!v || !vals || !used)
		st = ifail(g, path, NB_ERR_NOMEM, "out of memory");
	n = 0;
	for (int k = 0; !st && k < g->n_nodes; k++)
		if (wanted(g->nodes[k]))
			v[n++] = g->nodes[k];
	/* everything is read and checked first: a failure changes nothing */
	for (int k = 0; k < n && !st; k++) {
		bool r;
		int i = locate(g, path, f, v[k], &r);
		if (i < 0) {
			st = g->status;
			break;
		}
		if (used[i]) {
			char shown[160];
			st = ifail(g, path, NB_ERR_FORMAT,
			           "%s would fill both %s and %s of the model",
			           nb__shown(name_of(f, i), shown, sizeof shown),
			           v[used[i] - 1]->name, v[k]->name);
			break;
		}
		used[i] = k + 1;
		renamed += r;
		if (!(vals[k] = malloc(sizeof **vals * (size_t)(v[k]->size ? v[k]->size : 1))))
			st = ifail(g, path, NB_ERR_NOMEM, "%s: out of memory", v[k]->name);
		else
			st = read_values(g, path, f, i, v[k], vals[k]);
	}
	for (int k = 0; k < n && !st; k++)
		for (int64_t e = 0; e < v[k]->size; e++)
			nb__set(v[k], e, vals[k][e]);
	if (!st && report) {
		report->loaded = n;
		report->renamed = renamed;
		for (int i = 0; i < nb_safetensors_count(f); i++)
			report->ignored += !used[i];
	}
	for (int k = 0; vals && k < n; k++)
		free(vals[k]);
	free(vals);
	free(v);
	free(used);
	nb_safetensors_free(f);
	return st;
}
