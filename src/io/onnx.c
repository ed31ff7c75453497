/*
 * ONNX export: the inference graph computing chosen outputs, written as an
 * ONNX ModelProto (opset 13, IR version 7).  docs/onnx.md has the op
 * mapping table.
 *
 * The file is protobuf.  Writing the few messages ONNX needs takes a
 * varint, a length-delimited field and a fixed32; the field numbers below
 * are those of onnx.proto (ONNX 1.12, as shipped in python3-onnx), and the
 * tests read every file back with onnx.load and onnx.checker.check_model
 * (full_check) and run it in ONNX Runtime.
 */
#include "io/safetensors.h"
#include "io/wfile.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/conv/conv.h"

#define OPSET 13
#define IR_VERSION 7 /* the IR version of opset 13 (ONNX 1.8) */

/* onnx.proto field numbers */
enum {
	MODEL_IR_VERSION = 1,
	MODEL_PRODUCER_NAME = 2,
	MODEL_PRODUCER_VERSION = 3,
	MODEL_GRAPH = 7,
	MODEL_OPSET_IMPORT = 8,
	OPSET_DOMAIN = 1,
	OPSET_VERSION = 2,
	GRAPH_NODE = 1,
	GRAPH_NAME = 2,
	GRAPH_INITIALIZER = 5,
	GRAPH_INPUT = 11,
	GRAPH_OUTPUT = 12,
	NODE_INPUT = 1,
	NODE_OUTPUT = 2,
	NODE_NAME = 3,
	NODE_OP_TYPE = 4,
	NODE_ATTRIBUTE = 5,
	ATTR_NAME = 1,
	ATTR_F = 2,
	ATTR_I = 3,
	ATTR_INTS = 8,
	ATTR_TYPE = 20,
	TENSOR_DIMS = 1,
	TENSOR_DATA_TYPE = 2,
	TENSOR_NAME = 8,
	TENSOR_RAW_DATA = 9,
	VALUE_INFO_NAME = 1,
	VALUE_INFO_TYPE = 2,
	TYPE_TENSOR_TYPE = 1,
	TYPE_TENSOR_ELEM_TYPE = 1,
	TYPE_TENSOR_SHAPE = 2,
	SHAPE_DIM = 1,
	DIM_VALUE = 1,
	DIM_PARAM = 2,
};
/* AttributeProto.AttributeType and TensorProto.DataType */
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7 };
enum { DT_FLOAT = 1, DT_INT64 = 7, DT_DOUBLE = 11 };
/* protobuf wire types */
enum { WT_VARINT = 0, WT_LEN = 2, WT_FIXED32 = 5 };

/* ---- a protobuf writer ------------------------------------------------------ */

typedef struct pb {
	unsigned char *p;
	size_t n, cap;
	bool oom;
} pb;

static void pb_raw(pb *b, const void *s, size_t n)
{
	if (b->oom || !n)
		return;
	if (n > SIZE_MAX / 2 - b->n) {
		b->oom = true;
		return;
	}
	if (b->n + n > b->cap) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc < b->n + n)
			nc *= 2;
		unsigned char *q = realloc(b->p, nc);
		if (!q) {
			b->oom = true;
			return;
		}
		b->p = q;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void pb_varint(pb *b, uint64_t v)
{
	unsigned char t[10];
	size_t k = 0;
	do {
		t[k] = (unsigned char)(v & 0x7f);
		v >>= 7;
		t[k++] |= v ? 0x80 : 0;
	} while (v);
	pb_raw(b, t, k);
}

static void pb_key(pb *b, int field, int wire)
{
	pb_varint(b, (uint64_t)field << 3 | (unsigned)wire);
}

/* int64 and int32 fields: negative values are ten-byte two's complement */
static void pb_int(pb *b, int field, int64_t v)
{
	pb_key(b, field, WT_VARINT);
	pb_varint(b, (uint64_t)v);
}

static void pb_bytes(pb *b, int field, const void *s, size_t n)
{
	pb_key(b, field, WT_LEN);
	pb_varint(b, n);
	pb_raw(b, s, n);
}

static void pb_str(pb *b, int field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

static void pb_float(pb *b, int field, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	unsigned char t[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
	                      (unsigned char)(u >> 24)};
	pb_key(b, field, WT_FIXED32);
	pb_raw(b, t, 4);
}

/* Append sub as a length-delimited field and free it. */
static void pb_msg(pb *b, int field, pb *sub)
{
	if (sub->oom)
		b->oom = true;
	pb_bytes(b, field, sub->p, sub->n);
	free(sub->p);
	*sub = (pb){0};
}

/* ---- names ------------------------------------------------------------------- */

/* A set of the names used so far (open addressing; the strings are owned). */
typedef struct nameset {
	char **slot;
	size_t cap, n;
} nameset;

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool ns_has(const nameset *s, const char *name)
{
	if (!s->cap)
		return false;
	for (size_t i = hash_str(name) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (!s->slot[i])
			return false;
		if (!strcmp(s->slot[i], name))
			return true;
	}
}

/* Adds a name the set does not have; false when out of memory (the string
 * is then freed). */
static bool ns_add(nameset *s, char *name)
{
	if (2 * (s->n + 1) > s->cap) {
		size_t nc = s->cap ? 2 * s->cap : 256;
		char **ns = calloc(nc, sizeof *ns);
		if (!ns) {
			free(name);
			return false;
		}
		for (size_t k = 0; k < s->cap; k++)
			if (s->slot[k]) {
				size_t i = hash_str(s->slot[k]) & (nc - 1);
				while (ns[i])
					i = (i + 1) & (nc - 1);
				ns[i] = s->slot[k];
			}
		free(s->slot);
		s->slot = ns;
		s->cap = nc;
	}
	size_t i = hash_str(name) & (s->cap - 1);
	while (s->slot[i])
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = name;
	s->n++;
	return true;
}

static void ns_free(nameset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slot[i]);
	free(s->slot);
}

/* ---- the exporter's state ---------------------------------------------------- */

typedef struct ox {
	nb_graph *g;
	const char *path;
	bool f64;     /* elements of the file are DOUBLE */
	bool dynamic; /* dimension 0 of batched tensors is "N" */
	pb graph;     /* GraphProto fields so far */
	nameset names;
	const char **vname;  /* per node id: its ONNX value name (in names) */
	unsigned char *need; /* per node id: on the path to an output */
	unsigned char *bat;  /* per node id: dimension 0 is the batch */
	nb_onnx_report rep;
	nb_status st;
} ox;

static nb_status xfail(ox *x, nb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nb_status xfail(ox *x, nb_status st, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (x->st == NB_OK) {
		nb__fail(x->g, st, "onnx export(%s): %s", x->path, msg);
		x->st = st;
	}
	return st;
}

static nb_status oom(ox *x)
{
	return xfail(x, NB_ERR_NOMEM, "out of memory");
}

/* A new unique name from base (sanitised) and suffix; NULL when out of
 * memory (recorded). */
static const char *fresh(ox *x, const char *base, const char *suffix)
{
	size_t bl = strlen(base), sl = suffix ? strlen(suffix) : 0;
	char *s = malloc(bl + sl + 24);
	if (!s) {
		oom(x);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < bl; i++) {
		char c = base[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_' || c == '.' || c == ':' || c == '/' ||
		          c == '-';
		s[k++] = ok ? c : '_';
	}
	if (!k)
		s[k++] = 't';
	memcpy(s + k, suffix ? suffix : "", sl);
	k += sl;
	s[k] = 0;
	for (int n = 2; ns_has(&x->names, s); n++)
		snprintf(s + k, 24, "_%d", n);
	if (!ns_add(&x->names, s)) {
		oom(x);
		return NULL;
	}
	return s;
}

/* ---- nodes, attributes, initializers ---------------------------------------- */

static void attr_int(pb *a, const char *name, int64_t v)
{
	pb at = {0};
	pb_str(&at, ATTR_NAME, name);
	pb_int(&at, ATTR_TYPE, ATTR_TYPE_INT);
	pb_int(&at, ATTR_I, v);
	pb_msg(a, NODE_ATTRIBUTE, &at);
}

static void attr_float(pb *a, const char *name, double v)
{
	pb at = {0};
	pb_str(&at, ATTR_NAME, name);
	pb_int(&at, ATTR_TYPE, ATTR_TYPE_FLOAT);
	pb_float(&at, ATTR_F, (float)v);
	pb_msg(a, NODE_ATTRIBUTE, &at);
}

static void attr_ints(pb *a, const char *name, const int64_t *v, int n)
{
	pb at = {0};
	pb_str(&at, ATTR_NAME, name);
	pb_int(&at, ATTR_TYPE, ATTR_TYPE_INTS);
	for (int i = 0; i < n; i++)
		pb_int(&at, ATTR_INTS, v[i]);
	pb_msg(a, NODE_ATTRIBUTE, &at);
}

/* One NodeProto: op_type(in...) -> out, with attributes attrs (freed). */
static void node(ox *x, const char *op, const char *const *in, int nin, const char *out, pb *attrs)
{
	pb nd = {0};
	for (int i = 0; i < nin; i++)
		pb_str(&nd, NODE_INPUT, in[i]);
	pb_str(&nd, NODE_OUTPUT, out);
	pb_str(&nd, NODE_NAME, out);
	pb_str(&nd, NODE_OP_TYPE, op);
	if (attrs) {
		if (attrs->oom)
			nd.oom = true;
		pb_raw(&nd, attrs->p, attrs->n);
		free(attrs->p);
		*attrs = (pb){0};
	}
	pb_msg(&x->graph, GRAPH_NODE, &nd);
	x->rep.nodes++;
}

static void node1(ox *x, const char *op, const char *in, const char *out, pb *attrs)
{
	node(x, op, &in, 1, out, attrs);
}

static void node2(ox *x, const char *op, const char *a, const char *b, const char *out)
{
	const char *in[2] = {a, b};
	node(x, op, in, 2, out, NULL);
}

/* Little-endian bytes of an element, as raw_data holds them. */
static void put_le(unsigned char *dst, const void *src, size_t es)
{
	uint64_t u = 0;
	if (es == 8)
		memcpy(&u, src, 8);
	else {
		uint32_t v;
		memcpy(&v, src, 4);
		u = v;
	}
	for (size_t i = 0; i < es; i++)
		dst[i] = (unsigned char)(u >> (8 * i));
}

/* A TensorProto initializer.  vals: n doubles converted to the file's
 * type, or (i64) n int64s. */
static void initializer(ox *x, const char *name, const int64_t *dims, int ndim, int dtype,
                        const void *vals, int64_t n)
{
	pb tp = {0};
	for (int i = 0; i < ndim; i++)
		pb_int(&tp, TENSOR_DIMS, dims[i]);
	pb_int(&tp, TENSOR_DATA_TYPE, dtype);
	pb_str(&tp, TENSOR_NAME, name);
	size_t es = dtype == DT_FLOAT ? 4 : 8;
	unsigned char *raw = malloc((size_t)(n ? n : 1) * es);
	if (!raw) {
		free(tp.p);
		oom(x);
		return;
	}
	for (int64_t i = 0; i < n; i++) {
		if (dtype == DT_INT64)
			put_le(raw + i * 8, (const int64_t *)vals + i, 8);
		else if (dtype == DT_DOUBLE)
			put_le(raw + i * 8, (const double *)vals + i, 8);
		else {
			float f = (float)((const double *)vals)[i];
			put_le(raw + i * 4, &f, 4);
		}
	}
	pb_bytes(&tp, TENSOR_RAW_DATA, raw, (size_t)n * es);
	free(raw);
	pb_msg(&x->graph, GRAPH_INITIALIZER, &tp);
	x->rep.initializers++;
}

static int elem_type(const ox *x)
{
	return x->f64 ? DT_DOUBLE : DT_FLOAT;
}

/* A scalar of the file's element type */
static const char *scalar(ox *x, const char *base, const char *what, double v)
{
	const char *name = fresh(x, base, what);
	if (name)
		initializer(x, name, NULL, 0, elem_type(x), &v, 1);
	return name;
}

/* A 1-D int64 tensor (shapes, axes, slice bounds) */
static const char *ints(ox *x, const char *base, const char *what, const int64_t *v, int n)
{
	const char *name = fresh(x, base, what);
	int64_t d = n;
	if (name)
		initializer(x, name, &d, 1, DT_INT64, v, n);
	return name;
}

/* A leaf's current values as an initializer */
static void leaf_initializer(ox *x, const nb_tensor *t)
{
	double *v = malloc(sizeof *v * (size_t)(t->size ? t->size : 1));
	if (!v) {
		oom(x);
		return;
	}
	for (int64_t i = 0; i < t->size; i++) {
		v[i] = nb__get(t, i);
		if (t->g->dtype == NB_F64 && !x->f64) {
			if (isfinite(v[i]) && !isfinite((float)v[i])) { /* would round to inf */
				xfail(x, NB_ERR_VALUE,
				      "%s: element %lld is %g, beyond float32's range (export it "
				      "as float64)",
				      t->name, (long long)i, v[i]);
				free(v);
				return;
			}
			double d = fabs(v[i] - (double)(float)v[i]);
			if (d > x->rep.cast_max_abs)
				x->rep.cast_max_abs = d;
			if (d > 0 && d / fabs(v[i]) > x->rep.cast_max_rel)
				x->rep.cast_max_rel = d / fabs(v[i]);
		}
	}
	initializer(x, x->vname[t->id], t->shape.d, t->shape.ndim, elem_type(x), v, t->size);
	free(v);
	x->rep.weights += t->size;
}

/* A ValueInfoProto for a graph input or output */
static void value_info(ox *x, int field, const nb_tensor *t)
{
	pb shape = {0}, tt = {0}, ty = {0}, vi = {0};
	for (int i = 0; i < t->shape.ndim; i++) {
		pb dim = {0};
		if (i == 0 && x->dynamic && x->bat[t->id])
			pb_str(&dim, DIM_PARAM, "N");
		else
			pb_int(&dim, DIM_VALUE, t->shape.d[i]);
		pb_msg(&shape, SHAPE_DIM, &dim);
	}
	pb_int(&tt, TYPE_TENSOR_ELEM_TYPE, elem_type(x));
	/* a scalar has a shape with no dimensions: the field must be present */
	pb_msg(&tt, TYPE_TENSOR_SHAPE, &shape);
	pb_msg(&ty, TYPE_TENSOR_TYPE, &tt);
	pb_str(&vi, VALUE_INFO_NAME, x->vname[t->id]);
	pb_msg(&vi, VALUE_INFO_TYPE, &ty);
	pb_msg(&x->graph, field, &vi);
}

/* ---- the batch dimension ----------------------------------------------------- */

/* batched() for the binary elementwise ops: an operand without the batch
 * must broadcast along dimension 0 */
static bool batched_binary(const ox *x, const nb_tensor *t, int64_t batch, char *why, size_t n)
{
	const unsigned char *bat = x->bat;
	for (int k = 0; k < t->n_in; k++) {
		const nb_tensor *u = t->in[k];
		if (!bat[u->id] && u->shape.ndim == t->shape.ndim && u->shape.d[0] != 1 &&
		    batch != 1) {
			snprintf(why, n, "%s (%s) combines the batch with %s of fixed size %lld",
			         t->name, nb__op_name(t), u->name, (long long)u->shape.d[0]);
			return false;
		}
		if (bat[u->id] && u->shape.ndim != t->shape.ndim) {
			snprintf(why, n, "%s (%s) broadcasts the batch dimension", t->name,
			         nb__op_name(t));
			return false;
		}
	}
	return true;
}

/* batched() for matmul, transpose, reshape and concat */
static bool batched_layout(const ox *x, const nb_tensor *t, char *why, size_t n)
{
	const unsigned char *bat = x->bat;
	const nb_tensor *a = t->in[0];
	int ax = (int)t->a.i[0];
	switch (t->op) {
	case NB_OP_MATMUL:
		if (bat[t->in[1]->id] && t->in[1]->shape.ndim == 2) {
			snprintf(why, n, "%s (matmul) multiplies by a batched right operand",
			         t->name);
			return false;
		}
		if (bat[a->id] && a->shape.ndim == 2 && t->a.i[0]) {
			snprintf(why, n, "%s (matmul) transposes the batch dimension", t->name);
			return false;
		}
		return true;
	case NB_OP_TRANSPOSE:
		if (t->a.i[0] == 0 || t->a.i[1] == 0) {
			snprintf(why, n, "%s (transpose) moves the batch dimension", t->name);
			return false;
		}
		return true;
	case NB_OP_RESHAPE:
		if (t->shape.d[0] != a->shape.d[0] || a->shape.ndim == 0) {
			snprintf(why, n, "%s (reshape) changes the batch dimension", t->name);
			return false;
		}
		return true;
	case NB_OP_CONCAT:
		for (int k = 0; k < t->n_in; k++)
			if (!bat[t->in[k]->id] || ax == 0) {
				snprintf(why, n, "%s (concat) %s", t->name,
				         ax == 0 ? "concatenates along the batch"
				                 : "joins batched and unbatched tensors");
				return false;
			}
		return true;
	default:
		return true;
	}
}

/* Whether dimension 0 of t's output is the batch, given its inputs'; when
 * an op ties dimension 0 to the built batch size (reduces, concatenates,
 * slices or moves it), sets *why. */
static bool batched(const ox *x, const nb_tensor *t, int64_t batch, char *why, size_t n)
{
	const unsigned char *bat = x->bat;
	bool any = false;
	for (int k = 0; k < t->n_in; k++)
		any |= bat[t->in[k]->id];
	if (!any || t->shape.ndim == 0) {
		if (any)
			snprintf(why, n, "%s (%s) reduces the batch dimension", t->name,
			         nb__op_name(t));
		return false;
	}
	const nb_tensor *a = t->in[0];
	int ax = (int)t->a.i[0];
	switch (t->op) {
	case NB_OP_ADD:
	case NB_OP_SUB:
	case NB_OP_MUL:
	case NB_OP_DIV:
	case NB_OP_MASK_RANGE:
		return batched_binary(x, t, batch, why, n);
	case NB_OP_MATMUL:
	case NB_OP_TRANSPOSE:
	case NB_OP_RESHAPE:
	case NB_OP_CONCAT:
		return batched_layout(x, t, why, n);
	case NB_OP_SLICE:
	case NB_OP_EMBED:
	case NB_OP_SOFTMAX:
	case NB_OP_LOG_SOFTMAX:
	case NB_OP_MAX:
		if (ax == 0) {
			snprintf(why, n, "%s (%s) works along the batch dimension", t->name,
			         nb__op_name(t));
			return false;
		}
		return true;
	case NB_OP_SUM:
	case NB_OP_MEAN:
		if (t->a.i[0] & 1) {
			snprintf(why, n, "%s (%s) reduces the batch dimension", t->name,
			         nb__op_name(t));
			return false;
		}
		return true;
	case NB_OP_BROADCAST_TO:
	case NB_OP_SUM_TO:
		if (a->shape.ndim != t->shape.ndim || a->shape.d[0] != t->shape.d[0]) {
			snprintf(why, n, "%s (%s) changes the batch dimension", t->name,
			         nb__op_name(t));
			return false;
		}
		return true;
	case NB_OP_MSE:
	case NB_OP_BCE:
	case NB_OP_BCE_LOGITS:
	case NB_OP_CCE:
	case NB_OP_SPARSE_CCE:
		/* the reductions to a scalar stopped above; per-sample losses need
		 * prediction and target batched alike */
		if (!bat[a->id] || !bat[t->in[1]->id]) {
			snprintf(why, n, "%s (%s) pairs batched and unbatched tensors", t->name,
			         nb__op_name(t));
			return false;
		}
		return true;
	case NB_OP_BATCHNORM:
	case NB_OP_CONV2D:
		/* the input is batched (some input is), the weights are not */
		for (int k = 1; k < t->n_in; k++)
			if (bat[t->in[k]->id]) {
				snprintf(why, n, "%s (%s) has a batched weight", t->name,
				         nb__op_name(t));
				return false;
			}
		return true;
	default: /* unary ops keep the layout */
		return true;
	}
}

/* ---- op mapping ----------------------------------------------------------------- */

static const char *in_name(const ox *x, const nb_tensor *t, int k)
{
	return x->vname[t->in[k]->id];
}

/* fresh name for an intermediate value of t's mapping */
static const char *tmp(ox *x, const nb_tensor *t, const char *what)
{
	return fresh(x, x->vname[t->id], what);
}

/* Reshape's target shape: dimension 0 copied from the input (0) where it
 * is the batch */
static const char *shape_ints(ox *x, const nb_tensor *t, nb_shape s, bool keep0)
{
	int64_t d[NB_MAX_DIMS];
	for (int i = 0; i < s.ndim; i++)
		d[i] = i == 0 && keep0 ? 0 : s.d[i];
	return ints(x, x->vname[t->id], "/shape", d, s.ndim);
}

static void emit_clip(ox *x, const nb_tensor *t, const char *in, double lo, double hi,
                      const char *out)
{
	const char *c[3] = {in, scalar(x, x->vname[t->id], "/min", lo),
	                    scalar(x, x->vname[t->id], "/max", hi)};
	if (c[1] && c[2])
		node(x, "Clip", c, 3, out, NULL);
}

/* x * s as a Mul by a scalar (or the input itself when s is 1) */
static const char *scaled(ox *x, const nb_tensor *t, const char *in, double s, const char *what,
                          const char *out)
{
	if (s == 1 && !out)
		return in;
	const char *c = scalar(x, x->vname[t->id], what, s);
	const char *o = out ? out : tmp(x, t, "/scaled");
	if (c && o)
		node2(x, "Mul", in, c, o);
	return o;
}

static void emit_matmul(ox *x, const nb_tensor *t, const char *out)
{
	const nb_tensor *a = t->in[0], *b = t->in[1];
	bool ta = t->a.i[0], tb = t->a.i[1];
	const char *an = in_name(x, t, 0), *bn = in_name(x, t, 1);
	if (a->shape.ndim == 2 && b->shape.ndim == 2) {
		pb at = {0};
		if (ta)
			attr_int(&at, "transA", 1);
		if (tb)
			attr_int(&at, "transB", 1);
		const char *in[2] = {an, bn};
		node(x, "Gemm", in, 2, out, &at);
		return;
	}
	const char *ops[2] = {an, bn};
	const nb_tensor *src[2] = {a, b};
	bool tr[2] = {ta, tb};
	for (int k = 0; k < 2; k++) {
		if (!tr[k])
			continue;
		int nd = src[k]->shape.ndim;
		int64_t perm[NB_MAX_DIMS];
		for (int i = 0; i < nd; i++)
			perm[i] = i;
		perm[nd - 2] = nd - 1;
		perm[nd - 1] = nd - 2;
		pb at = {0};
		attr_ints(&at, "perm", perm, nd);
		const char *o = tmp(x, t, k ? "/b_t" : "/a_t");
		if (!o)
			return;
		node1(x, "Transpose", ops[k], o, &at);
		ops[k] = o;
	}
	node(x, "MatMul", ops, 2, out, NULL);
}

static void emit_reduce(ox *x, const nb_tensor *t, const char *op, int64_t mask, bool keep,
                        bool axes_input, const char *out)
{
	int64_t axes[NB_MAX_DIMS];
	int n = 0;
	for (int i = 0; i < t->in[0]->shape.ndim; i++)
		if (mask >> i & 1)
			axes[n++] = i;
	if (!n) {
		node1(x, "Identity", in_name(x, t, 0), out, NULL);
		return;
	}
	pb at = {0};
	attr_int(&at, "keepdims", keep);
	if (axes_input) { /* ReduceSum takes its axes as an input from opset 13 */
		const char *in[2] = {in_name(x, t, 0), ints(x, x->vname[t->id], "/axes", axes, n)};
		if (in[1])
			node(x, op, in, 2, out, &at);
		else
			free(at.p);
	} else {
		attr_ints(&at, "axes", axes, n);
		node1(x, op, in_name(x, t, 0), out, &at);
	}
}

/* sum_to: ReduceSum over the broadcast axes (kept), then Reshape */
static void emit_sum_to(ox *x, const nb_tensor *t, const char *out)
{
	const nb_shape in = t->in[0]->shape, o = t->shape;
	int lead = in.ndim - o.ndim;
	int64_t mask = 0;
	for (int i = 0; i < in.ndim; i++)
		if (i < lead || (o.d[i - lead] == 1 && in.d[i] != 1))
			mask |= (int64_t)1 << i;
	if (!mask) {
		const char *s[2] = {in_name(x, t, 0), shape_ints(x, t, o, false)};
		if (s[1])
			node(x, "Reshape", s, 2, out, NULL);
		return;
	}
	const char *r = tmp(x, t, "/sum");
	if (!r)
		return;
	emit_reduce(x, t, "ReduceSum", mask, true, true, r);
	bool keep0 = x->bat[t->id] && !(mask & 1);
	const char *s[2] = {r, shape_ints(x, t, o, keep0)};
	if (s[1])
		node(x, "Reshape", s, 2, out, NULL);
}

static void emit_conv(ox *x, const nb_tensor *t, const char *out)
{
	const int64_t *a = t->a.i;
	const nb_shape w = t->in[1]->shape;
	pb at = {0};
	attr_ints(&at, "kernel_shape", (const int64_t[]){w.d[2], w.d[3]}, 2);
	attr_ints(&at, "strides", (const int64_t[]){a[A_SH], a[A_SW]}, 2);
	attr_ints(&at, "pads", (const int64_t[]){a[A_PT], a[A_PL], a[A_PB], a[A_PR]}, 4);
	attr_ints(&at, "dilations", (const int64_t[]){a[A_DH], a[A_DW]}, 2);
	attr_int(&at, "group", a[A_GROUPS]);
	const char *in[3] = {in_name(x, t, 0), in_name(x, t, 1),
	                     t->n_in > 2 ? in_name(x, t, 2) : ""};
	node(x, "Conv", in, t->n_in, out, &at);
}

/* pool.c: i[0..5] = kernel h, w, stride h, w, padding h, w */
static void emit_pool(ox *x, const nb_tensor *t, const char *op, const char *out)
{
	const int64_t *a = t->a.i;
	pb at = {0};
	attr_ints(&at, "kernel_shape", (const int64_t[]){a[0], a[1]}, 2);
	attr_ints(&at, "strides", (const int64_t[]){a[2], a[3]}, 2);
	attr_ints(&at, "pads", (const int64_t[]){a[4], a[5], a[4], a[5]}, 4);
	if (t->op == NB_OP_AVGPOOL2D)
		attr_int(&at, "count_include_pad", 1);
	node1(x, op, in_name(x, t, 0), out, &at);
}

/* ---- losses ---------------------------------------------------------------- */

/* loss.c clamps the arguments of BCE's logs to at least this */
#define BCE_EPS 1e-12

/* The loss's reduction (attribute i[0]) of per-element or per-sample
 * losses l into out: none, or ReduceSum / ReduceMean over every axis. */
static void reduce_loss(ox *x, const nb_tensor *t, const char *l, int ndim, const char *out)
{
	if (t->a.i[0] == NB_NONE) {
		node1(x, "Identity", l, out, NULL);
		return;
	}
	int64_t axes[NB_MAX_DIMS];
	for (int i = 0; i < ndim; i++)
		axes[i] = i;
	pb at = {0};
	attr_int(&at, "keepdims", 0);
	if (t->a.i[0] == NB_SUM) { /* axes as an input (opset 13) */
		const char *in[2] = {l, ints(x, x->vname[t->id], "/axes", axes, ndim)};
		if (in[1])
			node(x, "ReduceSum", in, 2, out, &at);
		else
			free(at.p);
	} else {
		attr_ints(&at, "axes", axes, ndim);
		node1(x, "ReduceMean", l, out, &at);
	}
}

/* 1 where ids[..., None] == c for the class c of the last axis: ids as
 * values of the element type, compared with the initializer 0, 1, ...,
 * classes-1 (a bad id gives a row of zeros; nabla's run fails on it). */
static const char *one_hot(ox *x, const nb_tensor *t, const char *ids, int64_t classes,
                           const char *out)
{
	double *c = malloc(sizeof *c * (size_t)classes);
	const char *name = fresh(x, x->vname[t->id], "/classes");
	int64_t minus1 = -1;
	const char *ax = ints(x, x->vname[t->id], "/last", &minus1, 1);
	const char *col = tmp(x, t, "/ids"), *eq = tmp(x, t, "/eq");
	const char *o = out ? out : tmp(x, t, "/one_hot");
	if (!c || !name || !ax || !col || !eq || !o) {
		free(c);
		if (!c)
			oom(x);
		return NULL;
	}
	for (int64_t i = 0; i < classes; i++)
		c[i] = (double)i;
	initializer(x, name, &classes, 1, elem_type(x), c, classes);
	free(c);
	node2(x, "Unsqueeze", ids, ax, col);
	node2(x, "Equal", col, name, eq);
	pb at = {0};
	attr_int(&at, "to", elem_type(x));
	node1(x, "Cast", eq, o, &at);
	return o;
}

static void emit_loss(ox *x, const nb_tensor *t, const char *out)
{
	const char *p = in_name(x, t, 0), *q = in_name(x, t, 1), *l = tmp(x, t, "/loss");
	const nb_tensor *z = t->in[0];
	if (!l)
		return;
	switch (t->op) {
	case NB_OP_MSE: { /* (p - q)^2 */
		const char *d = tmp(x, t, "/diff");
		if (!d)
			return;
		node2(x, "Sub", p, q, d);
		node2(x, "Mul", d, d, l);
		break;
	}
	case NB_OP_BCE: { /* -(q log max(p, eps) + (1 - q) log max(1 - p, eps)) */
		const char *eps = scalar(x, out, "/eps", BCE_EPS), *one = scalar(x, out, "/one", 1);
		const char *v[9] = {tmp(x, t, "/p_c"), tmp(x, t, "/log_p"), tmp(x, t, "/q_log_p"),
		                    tmp(x, t, "/1-p"), tmp(x, t, "/1-p_c"), tmp(x, t, "/log_1-p"),
		                    tmp(x, t, "/1-q"), tmp(x, t, "/rest"),  tmp(x, t, "/sum")};
		for (int i = 0; i < 9; i++)
			if (!v[i])
				return;
		if (!eps || !one)
			return;
		node2(x, "Clip", p, eps, v[0]);
		node1(x, "Log", v[0], v[1], NULL);
		node2(x, "Mul", q, v[1], v[2]);
		node2(x, "Sub", one, p, v[3]);
		node2(x, "Clip", v[3], eps, v[4]);
		node1(x, "Log", v[4], v[5], NULL);
		node2(x, "Sub", one, q, v[6]);
		node2(x, "Mul", v[6], v[5], v[7]);
		node2(x, "Add", v[2], v[7], v[8]);
		node1(x, "Neg", v[8], l, NULL);
		break;
	}
	case NB_OP_BCE_LOGITS: { /* max(z, 0) - z q + log(1 + exp(-|z|)) */
		const char *v[6] = {tmp(x, t, "/relu"), tmp(x, t, "/zq"),       tmp(x, t, "/abs"),
		                    tmp(x, t, "/-abs"), tmp(x, t, "/softplus"), tmp(x, t, "/diff")};
		for (int i = 0; i < 6; i++)
			if (!v[i])
				return;
		node1(x, "Relu", p, v[0], NULL);
		node2(x, "Mul", p, q, v[1]);
		node1(x, "Abs", p, v[2], NULL);
		node1(x, "Neg", v[2], v[3], NULL);
		node1(x, "Softplus", v[3], v[4], NULL);
		node2(x, "Sub", v[0], v[1], v[5]);
		node2(x, "Add", v[5], v[4], l);
		break;
	}
	case NB_OP_CCE:
	case NB_OP_SPARSE_CCE: { /* -sum_c q_c log softmax(z)_c per sample */
		if (t->op == NB_OP_SPARSE_CCE &&
		    !(q = one_hot(x, t, q, z->shape.d[z->shape.ndim - 1], NULL)))
			return;
		int64_t last = z->shape.ndim - 1;
		const char *v[4] = {tmp(x, t, "/log_softmax"), tmp(x, t, "/q_log_softmax"),
		                    tmp(x, t, "/sum"), ints(x, out, "/class_axis", &last, 1)};
		for (int i = 0; i < 4; i++)
			if (!v[i])
				return;
		pb at = {0};
		attr_int(&at, "axis", -1);
		node1(x, "LogSoftmax", p, v[0], &at);
		node2(x, "Mul", q, v[0], v[1]);
		const char *in[2] = {v[1], v[3]};
		attr_int(&at, "keepdims", 0);
		node(x, "ReduceSum", in, 2, v[2], &at);
		node1(x, "Neg", v[2], l, NULL);
		reduce_loss(x, t, l, z->shape.ndim - 1, out);
		return;
	}
	}
	reduce_loss(x, t, l, z->shape.ndim, out);
}

/* GreaterOrEqual(v, 0) */
static const char *nonneg(ox *x, const nb_tensor *t)
{
	const char *zero = scalar(x, x->vname[t->id], "/zero", 0), *o = tmp(x, t, "/nonneg");
	if (zero && o)
		node2(x, "GreaterOrEqual", in_name(x, t, 0), zero, o);
	return o;
}

/* elementwise ops (elementwise.c) and the identities: false when t is none of them */
static bool emit_elementwise(ox *x, const nb_tensor *t, const char *a, const char *out)
{
	const double f0 = t->a.f[0], f1 = t->a.f[1];
	switch (t->op) {
	case NB_OP_ADD:
		node2(x, "Add", a, in_name(x, t, 1), out);
		return true;
	case NB_OP_SUB:
		node2(x, "Sub", a, in_name(x, t, 1), out);
		return true;
	case NB_OP_MUL:
		node2(x, "Mul", a, in_name(x, t, 1), out);
		return true;
	case NB_OP_DIV:
		node2(x, "Div", a, in_name(x, t, 1), out);
		return true;
	case NB_OP_NEG:
		node1(x, "Neg", a, out, NULL);
		return true;
	case NB_OP_ADD_SCALAR: {
		const char *c = scalar(x, out, "/c", f0);
		if (c)
			node2(x, "Add", a, c, out);
		return true;
	}
	case NB_OP_MUL_SCALAR:
		scaled(x, t, a, f0, "/c", out);
		return true;
	case NB_OP_RSUB_SCALAR: {
		const char *c = scalar(x, out, "/c", f0);
		if (c)
			node2(x, "Sub", c, a, out);
		return true;
	}
	case NB_OP_EXP:
		node1(x, "Exp", a, out, NULL);
		return true;
	case NB_OP_LOG:
		node1(x, "Log", a, out, NULL);
		return true;
	case NB_OP_SQRT:
		node1(x, "Sqrt", a, out, NULL);
		return true;
	case NB_OP_SQUARE:
		node2(x, "Mul", a, a, out);
		return true;
	case NB_OP_POW: {
		const char *c = scalar(x, out, "/p", f0);
		if (c)
			node2(x, "Pow", a, c, out);
		return true;
	}
	case NB_OP_ABS:
		node1(x, "Abs", a, out, NULL);
		return true;
	case NB_OP_SIGN:
		node1(x, "Sign", a, out, NULL);
		return true;
	case NB_OP_CLAMP:
		emit_clip(x, t, a, f0, f1, out);
		return true;
	case NB_OP_MASK_RANGE: { /* g where f0 < x < f1, else 0 */
		const char *lo = scalar(x, out, "/lo", f0), *hi = scalar(x, out, "/hi", f1);
		const char *zero = scalar(x, out, "/zero", 0);
		const char *gt = tmp(x, t, "/above"), *lt = tmp(x, t, "/below"),
		           *in = tmp(x, t, "/inside");
		if (!lo || !hi || !zero || !gt || !lt || !in)
			return true;
		node2(x, "Greater", in_name(x, t, 1), lo, gt);
		node2(x, "Less", in_name(x, t, 1), hi, lt);
		node2(x, "And", gt, lt, in);
		const char *w[3] = {in, a, zero};
		node(x, "Where", w, 3, out, NULL);
		return true;
	}
	case NB_OP_STOP_GRADIENT:
	case NB_OP_PURELIN:
	case NB_OP_DROPOUT: /* the identity in inference */
		node1(x, "Identity", a, out, NULL);
		return true;
	default:
		return false;
	}
}

/* linear algebra, shape and reductions (matmul.c, shape.c, reduce.c):
 * false when t is none of them */
static bool emit_shape_op(ox *x, const nb_tensor *t, const char *a, const char *out)
{
	switch (t->op) {
	case NB_OP_MATMUL:
		emit_matmul(x, t, out);
		return true;
	case NB_OP_TRANSPOSE: {
		int64_t perm[NB_MAX_DIMS];
		for (int i = 0; i < t->shape.ndim; i++)
			perm[i] = i;
		perm[t->a.i[0]] = t->a.i[1];
		perm[t->a.i[1]] = t->a.i[0];
		pb at = {0};
		attr_ints(&at, "perm", perm, t->shape.ndim);
		node1(x, "Transpose", a, out, &at);
		return true;
	}
	case NB_OP_RESHAPE: {
		const char *s[2] = {a, shape_ints(x, t, t->shape, x->bat[t->id])};
		if (s[1])
			node(x, "Reshape", s, 2, out, NULL);
		return true;
	}
	case NB_OP_CONCAT: {
		const char **in = malloc(sizeof *in * (size_t)t->n_in);
		if (!in) {
			oom(x);
			return true;
		}
		for (int k = 0; k < t->n_in; k++)
			in[k] = in_name(x, t, k);
		pb at = {0};
		attr_int(&at, "axis", t->a.i[0]);
		node(x, "Concat", in, t->n_in, out, &at);
		free(in);
		return true;
	}
	case NB_OP_SLICE: {
		const char *s[4] = {a, ints(x, out, "/starts", &t->a.i[1], 1),
		                    ints(x, out, "/ends", &t->a.i[2], 1),
		                    ints(x, out, "/axes", &t->a.i[0], 1)};
		if (s[1] && s[2] && s[3])
			node(x, "Slice", s, 4, out, NULL);
		return true;
	}
	case NB_OP_EMBED: { /* zeros around: Pad before start, after end */
		int nd = t->shape.ndim, ax = (int)t->a.i[0];
		int64_t pads[2 * NB_MAX_DIMS] = {0};
		pads[ax] = t->a.i[1];
		pads[nd + ax] = t->a.i[3] - t->a.i[2];
		const char *s[2] = {a, ints(x, out, "/pads", pads, 2 * nd)};
		if (s[1])
			node(x, "Pad", s, 2, out, NULL);
		return true;
	}
	case NB_OP_BROADCAST_TO: { /* 1 where the input keeps its size */
		const nb_shape in = t->in[0]->shape, o = t->shape;
		int64_t d[NB_MAX_DIMS];
		for (int i = 0; i < o.ndim; i++) {
			int j = i - (o.ndim - in.ndim);
			d[i] = j >= 0 && in.d[j] == o.d[i] ? 1 : o.d[i];
		}
		const char *s[2] = {a, ints(x, out, "/shape", d, o.ndim)};
		if (s[1])
			node(x, "Expand", s, 2, out, NULL);
		return true;
	}
	case NB_OP_SUM_TO:
		emit_sum_to(x, t, out);
		return true;
	case NB_OP_SUM:
		emit_reduce(x, t, "ReduceSum", t->a.i[0], t->a.i[1], true, out);
		return true;
	case NB_OP_MEAN:
		emit_reduce(x, t, "ReduceMean", t->a.i[0], t->a.i[1], false, out);
		return true;
	case NB_OP_MAX:
		emit_reduce(x, t, "ReduceMax", (int64_t)1 << t->a.i[0], t->a.i[1], false, out);
		return true;
	default:
		return false;
	}
}

/* activations (activation.c): false when t is none of them */
static bool emit_activation(ox *x, const nb_tensor *t, const char *a, const char *out)
{
	const double f0 = t->a.f[0], f1 = t->a.f[1];
	switch (t->op) {
	case NB_OP_HARDLIM: { /* 1 where v >= 0, else 0 (NaN: 0) */
		const char *ge = nonneg(x, t);
		pb at = {0};
		attr_int(&at, "to", elem_type(x));
		if (ge)
			node1(x, "Cast", ge, out, &at);
		else
			free(at.p);
		return true;
	}
	case NB_OP_HARDLIMS: { /* +1 where v >= 0, else -1 */
		const char *w[3] = {nonneg(x, t), scalar(x, out, "/pos", 1),
		                    scalar(x, out, "/neg", -1)};
		if (w[0] && w[1] && w[2])
			node(x, "Where", w, 3, out, NULL);
		return true;
	}
	case NB_OP_SATLIN:
		emit_clip(x, t, a, 0, 1, out);
		return true;
	case NB_OP_SATLINS:
		emit_clip(x, t, a, -1, 1, out);
		return true;
	case NB_OP_LOGSIG: {
		const char *v = scaled(x, t, a, f0, "/a", NULL);
		if (v)
			node1(x, "Sigmoid", v, out, NULL);
		return true;
	}
	case NB_OP_TANH: { /* f0 tanh(f1 v) */
		const char *v = scaled(x, t, a, f1, "/b", NULL);
		if (f0 == 1) {
			if (v)
				node1(x, "Tanh", v, out, NULL);
			return true;
		}
		const char *th = tmp(x, t, "/tanh");
		if (v && th) {
			node1(x, "Tanh", v, th, NULL);
			scaled(x, t, th, f0, "/a", out);
		}
		return true;
	}
	case NB_OP_RELU:
		node1(x, "Relu", a, out, NULL);
		return true;
	case NB_OP_SOFTMAX:
	case NB_OP_LOG_SOFTMAX: {
		pb at = {0};
		attr_int(&at, "axis", t->a.i[0]);
		node1(x, t->op == NB_OP_SOFTMAX ? "Softmax" : "LogSoftmax", a, out, &at);
		return true;
	}
	default:
		return false;
	}
}

/* normalisation, convolution, pooling and losses: false when t is none
 * of them */
static bool emit_layer_op(ox *x, const nb_tensor *t, const char *a, const char *out)
{
	const double f0 = t->a.f[0];
	switch (t->op) {
	case NB_OP_BATCHNORM: { /* inference: the running statistics */
		const char *in[5];
		for (int k = 0; k < 5; k++)
			in[k] = in_name(x, t, k);
		const char *o = t->a.i[0] ? tmp(x, t, "/bn") : out;
		if (!o)
			return true;
		pb at = {0};
		attr_float(&at, "epsilon", f0);
		node(x, "BatchNormalization", in, 5, o, &at);
		if (t->a.i[0])
			node1(x, "Relu", o, out, NULL);
		return true;
	}
	case NB_OP_CONV2D:
		emit_conv(x, t, out);
		return true;
	case NB_OP_MAXPOOL2D:
		emit_pool(x, t, "MaxPool", out);
		return true;
	case NB_OP_AVGPOOL2D:
		emit_pool(x, t, "AveragePool", out);
		return true;
	case NB_OP_GLOBAL_AVGPOOL: { /* [N,C,H,W] -> [N,C,1,1] -> [N,C] */
		const char *p = tmp(x, t, "/pool");
		if (!p)
			return true;
		node1(x, "GlobalAveragePool", a, p, NULL);
		pb at = {0};
		attr_int(&at, "axis", 1);
		node1(x, "Flatten", p, out, &at);
		return true;
	}
	case NB_OP_MSE:
	case NB_OP_BCE:
	case NB_OP_BCE_LOGITS:
	case NB_OP_CCE:
	case NB_OP_SPARSE_CCE:
		emit_loss(x, t, out);
		return true;
	case NB_OP_ONE_HOT:
		one_hot(x, t, a, t->a.i[0], out);
		return true;
	default:
		return false;
	}
}

static void emit_op(ox *x, const nb_tensor *t)
{
	const char *out = x->vname[t->id], *a = t->n_in ? in_name(x, t, 0) : NULL;
	if (emit_elementwise(x, t, a, out) || emit_shape_op(x, t, a, out) ||
	    emit_activation(x, t, a, out) || emit_layer_op(x, t, a, out))
		return;
	if (t->op == NB_OP_CUSTOM) {
		xfail(x, NB_ERR_FORMAT,
		      "op %s (computing %s) is a custom op (nb_custom_register): ONNX export "
		      "maps nabla's own ops only; export a graph that computes it with them",
		      nb__op_name(t), t->name);
		return;
	}
	xfail(x, NB_ERR_FORMAT,
	      "op %s (computing %s) has no ONNX mapping: it belongs to training (gradients, "
	      "optimizer updates), not to inference",
	      nb__op_name(t), t->name);
}

/* ---- the walk --------------------------------------------------------------- */

static const char *role_word(int role)
{
	return role == NB_ROLE_GRAD ? "a gradient of the backward pass" : "an optimizer update";
}

/* Mark what the outputs need; every output must depend on an input and
 * nothing on the path may be training-only. */
static nb_status mark(ox *x, nb_tensor *const *outs, int n)
{
	nb_graph *g = x->g;
	int *stack = malloc(sizeof *stack * (size_t)(g->n_nodes + 1));
	unsigned char *seen = calloc((size_t)g->n_nodes + 1, 1);
	if (!stack || !seen) {
		free(stack);
		free(seen);
		return oom(x);
	}
	for (int o = 0; o < n && !x->st; o++) {
		memset(seen, 0, (size_t)g->n_nodes);
		int sp = 0;
		bool input = false;
		stack[sp++] = outs[o]->id;
		seen[outs[o]->id] = 1;
		while (sp && !x->st) {
			const nb_tensor *t = g->nodes[stack[--sp]];
			x->need[t->id] = 1;
			input |= t->op == NB_OP_INPUT;
			if (t->role == NB_ROLE_GRAD || t->role == NB_ROLE_UPDATE)
				xfail(
				    x, NB_ERR_GRAPH,
				    "output %s depends on %s (%s), which is training-only: export "
				    "forward tensors",
				    outs[o]->name, t->name, role_word(t->role));
			for (int k = 0; k < t->n_in; k++)
				if (!seen[t->in[k]->id]) {
					seen[t->in[k]->id] = 1;
					stack[sp++] = t->in[k]->id;
				}
		}
		if (!x->st && !input)
			xfail(x, NB_ERR_GRAPH,
			      "output %s depends on no input, so there is no inference path to it",
			      outs[o]->name);
	}
	free(stack);
	free(seen);
	return x->st;
}

/* Decide whether the batch can be symbolic; sets x->bat and x->dynamic. */
static void batch_analysis(ox *x, bool want)
{
	nb_graph *g = x->g;
	int64_t batch = -1;
	x->dynamic = want;
	for (int i = 0; i < g->n_nodes && x->dynamic; i++) {
		const nb_tensor *t = g->nodes[i];
		if (!x->need[i] || t->op != NB_OP_INPUT)
			continue;
		if (t->shape.ndim == 0 || (batch >= 0 && t->shape.d[0] != batch)) {
			snprintf(x->rep.static_reason, sizeof x->rep.static_reason,
			         "the inputs have no common batch dimension (%s)", t->name);
			x->dynamic = false;
		}
		batch = t->shape.ndim ? t->shape.d[0] : batch;
		x->bat[i] = 1;
	}
	if (!want)
		snprintf(x->rep.static_reason, sizeof x->rep.static_reason, "asked for");
	for (int i = 0; i < g->n_nodes && x->dynamic; i++) {
		const nb_tensor *t = g->nodes[i];
		if (!x->need[i] || (nb__ops[t->op]->flags & NB_OPF_LEAF))
			continue;
		char why[160] = "";
		x->bat[i] = batched(x, t, batch, why, sizeof why);
		if (why[0]) {
			snprintf(x->rep.static_reason, sizeof x->rep.static_reason, "%s", why);
			x->dynamic = false;
		}
	}
	if (!x->dynamic)
		memset(x->bat, 0, (size_t)g->n_nodes);
}

static nb_status name_all(ox *x, nb_tensor *const *outs, int n)
{
	nb_graph *g = x->g;
	/* inputs first, then outputs, keep their names when they can */
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < g->n_nodes && !x->st; i++) {
			const nb_tensor *t = g->nodes[i];
			bool is_out = false;
			for (int o = 0; o < n; o++)
				is_out |= outs[o] == t;
			int want = t->op == NB_OP_INPUT ? 0 : is_out ? 1 : 2;
			if (x->need[i] && want == pass && !x->vname[i])
				x->vname[i] = fresh(x, t->name, NULL);
		}
	return x->st;
}

static nb_status check_outputs(ox *x, nb_tensor *const *outs, int n)
{
	if (n < 1 || !outs)
		return xfail(x, NB_ERR_ARG, "no outputs given");
	for (int o = 0; o < n; o++) {
		const nb_tensor *t = outs[o];
		if (!t)
			return xfail(x, NB_ERR_ARG, "output %d is NULL", o);
		if (t->g != x->g || nb__is_placeholder(t))
			return xfail(x, NB_ERR_ARG, "output %d (%s) is not a tensor of this graph",
			             o, t->g != x->g ? "another graph's" : "the error placeholder");
		for (int p = 0; p < o; p++)
			if (outs[p] == t)
				return xfail(x, NB_ERR_ARG, "output %s is listed twice", t->name);
	}
	return NB_OK;
}

/* The model around the graph, written atomically. */
static nb_status write_model(ox *x, const char *path)
{
	pb m = {0}, os = {0};
	pb_int(&m, MODEL_IR_VERSION, IR_VERSION);
	pb_str(&m, MODEL_PRODUCER_NAME, "nabla");
	pb_str(&m, MODEL_PRODUCER_VERSION, nb_version());
	pb_str(&os, OPSET_DOMAIN, "");
	pb_int(&os, OPSET_VERSION, OPSET);
	pb_msg(&m, MODEL_OPSET_IMPORT, &os);
	pb_msg(&m, MODEL_GRAPH, &x->graph);
	if (m.oom) {
		free(m.p);
		return oom(x);
	}
	x->rep.bytes = m.n;

	char err[640];
	nb__wfile w;
	if (nb__wfile_open(&w, path, false, err, sizeof err) != 0) {
		free(m.p);
		xfail(x, NB_ERR_IO, "cannot open for writing: %s", err);
		return x->st;
	}
	bool ok = fwrite(m.p, 1, m.n, w.fp) == m.n;
	free(m.p);
	if (!ok) {
		xfail(x, NB_ERR_IO, "write of the temporary file %s failed: %s", w.tmp,
		      strerror(errno));
		nb__wfile_abort(&w);
		return x->st;
	}
	if (nb__wfile_commit(&w, err, sizeof err) != 0)
		xfail(x, NB_ERR_IO, "%s", err);
	return x->st;
}

nb_status nb_onnx_save(nb_graph *g, nb_tensor *const *outputs, int n, const char *path,
                       nb_onnx_opts opts)
{
	if (opts.report)
		*opts.report = (nb_onnx_report){0};
	if (!g)
		return NB_ERR_ARG;
	if (g->status != NB_OK)
		return g->status;
	ox x = {.g = g, .path = path ? path : "(null)"};
	x.f64 = g->dtype == NB_F64 && opts.keep_f64;
	if (!path || !*path)
		return xfail(&x, NB_ERR_ARG, "no path");
	if (check_outputs(&x, outputs, n))
		return x.st;
	size_t nn = (size_t)g->n_nodes + 1;
	x.vname = calloc(nn, sizeof *x.vname);
	x.need = calloc(nn, 1);
	x.bat = calloc(nn, 1);
	if (!x.vname || !x.need || !x.bat)
		oom(&x);
	if (!x.st && !mark(&x, outputs, n) && !name_all(&x, outputs, n)) {
		batch_analysis(&x, !opts.static_batch);
		x.rep.dynamic_batch = x.dynamic;
		pb_str(&x.graph, GRAPH_NAME, opts.graph_name ? opts.graph_name : "nabla");
		for (int i = 0; i < g->n_nodes && !x.st; i++) {
			const nb_tensor *t = g->nodes[i];
			if (!x.need[i])
				continue;
			if (t->op == NB_OP_INPUT) {
				value_info(&x, GRAPH_INPUT, t);
				x.rep.inputs++;
			} else if (nb__ops[t->op]->flags & NB_OPF_LEAF)
				leaf_initializer(&x, t);
			else
				emit_op(&x, t);
		}
		/* an output that is a graph input still needs a node producing it */
		for (int o = 0; o < n && !x.st; o++) {
			const nb_tensor *t = outputs[o];
			if (t->op == NB_OP_INPUT) {
				const char *in = x.vname[t->id], *copy = fresh(&x, in, "/output");
				if (copy) {
					node1(&x, "Identity", in, copy, NULL);
					x.vname[t->id] = copy;
				}
			}
			value_info(&x, GRAPH_OUTPUT, t);
			x.rep.outputs++;
		}
		if (!x.st && x.graph.oom)
			oom(&x);
		if (!x.st)
			write_model(&x, path);
	}
	free(x.graph.p);
	ns_free(&x.names);
	free(x.vname);
	free(x.need);
	free(x.bat);
	if (opts.report)
		*opts.report = x.rep;
	return x.st;
}
