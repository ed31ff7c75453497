/* DOT export: views, stable ids, labels, escaping, rendering, I/O errors. */
#include "test_util.h"

#include "graph/internal.h" /* the op table, for every op's example */
#include "nabla_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------- */

static char tmpdir[64];
static int n_written; /* DOT files the test wrote (all checked with dot) */

static void make_tmpdir(void)
{
	n_written = 0;
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/nbdotXXXXXX",
	         base && strlen(base) < 40 ? base : "/tmp");
	ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
}

static void remove_tmpdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *path_in_tmp(const char *name)
{
	static char buf[4][160];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static bool have_dot(void)
{
	return access("/usr/bin/dot", X_OK) == 0 || system("command -v dot >/dev/null 2>&1") == 0;
}

/* The DOT text of g in one string; also saved to a file so that
 * check_with_dot can feed every graph this test writes to `dot`. */
static char *dot_text(nb_graph *g, nb_dot_view view)
{
	char name[32];
	snprintf(name, sizeof name, "g%d.dot", n_written++);
	const char *path = path_in_tmp(name);
	ck_assert_int_eq(nb_graph_save_dot(g, path, view), NB_OK);
	char *s = nb_test_read_file(path);
	/* the stream variant writes the same bytes */
	char *mem = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&mem, &len);
	ck_assert(fp != NULL);
	ck_assert_int_eq(nb_graph_write_dot(g, fp, view), NB_OK);
	fclose(fp);
	ck_assert_str_eq(mem, s);
	free(mem);
	return s;
}

/* Run `dot -Tsvg -O` on every DOT file written so far (one process for
 * all of them; gN.dot gives gN.dot.svg): exit status 0. */
static void check_with_dot(void)
{
	if (!have_dot()) {
		fprintf(stderr,
		        "test_dot: the dot program is not installed; skipping dot -Tsvg checks\n");
		return;
	}
	if (n_written == 0)
		return;
	size_t cap = 64 + (size_t)n_written * (strlen(tmpdir) + 24);
	char *cmd = malloc(cap);
	ck_assert_ptr_nonnull(cmd);
	size_t k = (size_t)snprintf(cmd, cap, "dot -Tsvg -O");
	for (int i = 0; i < n_written; i++)
		k += (size_t)snprintf(cmd + k, cap - k, " '%s/g%d.dot'", tmpdir, i);
	ck_assert(k < cap);
	int rc = system(cmd);
	ck_assert_msg(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "'%s' failed (%d)", cmd,
	              rc);
	free(cmd);
}

/* id of the node whose label starts with {name| ; -1 if absent */
static int id_of(const char *dot, const char *escaped_name)
{
	char pat[256];
	snprintf(pat, sizeof pat, " [label=\"{%s|", escaped_name);
	const char *p = strstr(dot, pat);
	if (!p)
		return -1;
	while (p > dot && p[-1] != 'n')
		p--;
	return atoi(p);
}

/* role (tooltip) of node n%d, or NULL */
static const char *role_of(const char *dot, int id, char *buf, size_t n)
{
	char pat[32];
	snprintf(pat, sizeof pat, "\tn%d [label=", id);
	const char *p = strstr(dot, pat);
	if (!p)
		return NULL;
	const char *e = strchr(p, '\n');
	const char *t = strstr(p, "tooltip=\"");
	ck_assert(t && t < e);
	t += 9;
	size_t k = (size_t)(strchr(t, '"') - t);
	ck_assert(k < n);
	memcpy(buf, t, k);
	buf[k] = 0;
	return buf;
}

static int count(const char *s, const char *pat)
{
	int n = 0;
	for (const char *p = strstr(s, pat); p; p = strstr(p + 1, pat))
		n++;
	return n;
}

/* Each edge "nA -> nB": both ends are drawn, and the edge is dashed exactly
 * when B is a gradient or an update node.  Returns the number of edges. */
static int check_edges(const char *dot, int *dashed)
{
	int n = 0;
	*dashed = 0;
	for (const char *p = strstr(dot, "\tn"); p; p = strstr(p + 1, "\tn")) {
		int a, b;
		if (sscanf(p, "\tn%d -> n%d", &a, &b) != 2)
			continue;
		char ra[32], rb[32];
		ck_assert_msg(role_of(dot, a, ra, sizeof ra), "edge from undrawn n%d", a);
		ck_assert_msg(role_of(dot, b, rb, sizeof rb), "edge to undrawn n%d", b);
		bool want = !strcmp(rb, "gradient") || !strcmp(rb, "optimizer update");
		const char *e = strchr(p, '\n');
		const char *d = strstr(p, "style=dashed");
		bool is = d && d < e;
		ck_assert_msg(is == want, "edge n%d -> n%d (into %s) dashed=%d", a, b, rb, is);
		*dashed += is;
		n++;
	}
	return n;
}

/* A small MLP with squared error, trained by SGD. */
typedef struct mlp {
	nb_graph *g;
	nb_tensor *x, *y, *w1, *b1, *w2, *b2, *loss;
	int forward_nodes; /* nodes before the optimizer, placeholder included */
} mlp;

static mlp build_mlp(void)
{
	mlp m;
	m.g = nb_graph_new(NB_F32);
	m.x = nb_input(m.g, "x", NB_SHAPE(4, 3));
	m.y = nb_input(m.g, "y", NB_SHAPE(4, 2));
	m.w1 = nb_param(m.g, "W1", NB_SHAPE(3, 5), NB_UNIFORM(-1, 1));
	m.b1 = nb_param(m.g, "b1", NB_SHAPE(5), NB_ZEROS);
	m.w2 = nb_param(m.g, "W2", NB_SHAPE(5, 2), NB_UNIFORM(-1, 1));
	m.b2 = nb_param(m.g, "b2", NB_SHAPE(2), NB_ZEROS);
	nb_tensor *h = nb_set_name(nb_add(nb_matmul(m.x, m.w1), m.b1), "h");
	h = nb_set_name(nb_mul(h, nb_mul_scalar(h, 0.5)), "act");
	nb_tensor *z = nb_set_name(nb_add(nb_matmul(h, m.w2), m.b2), "z");
	m.loss = nb_set_name(nb_mean(nb_square(nb_sub(z, m.y))), "loss");
	m.forward_nodes = nb_graph_num_nodes(m.g);
	nb_optim *o = nb_sgd(m.g, m.loss, (nb_sgd_opts){.lr = 0.05});
	ck_assert_ptr_nonnull(o);
	ck_graph_ok(m.g);
	return m;
}

/* ---- tests -------------------------------------------------------------------- */

START_TEST(test_forward_view)
{
	make_tmpdir();
	mlp m = build_mlp();
	char *fwd = dot_text(m.g, NB_DOT_FORWARD);
	/* every forward node but the error placeholder, nothing else */
	ck_assert_int_eq(count(fwd, " [label=\"{"), m.forward_nodes - 1);
	ck_assert_int_eq(count(fwd, "tooltip=\"gradient\""), 0);
	ck_assert_int_eq(count(fwd, "tooltip=\"optimizer update\""), 0);
	ck_assert_ptr_null(strstr(fwd, "style=dashed]"));
	ck_assert_ptr_null(strstr(fwd, "{1|constant|[]}")); /* the backward seed */
	ck_assert_ptr_null(strstr(fwd, "error"));
	/* labels: name | op (+ attribute text) | shape; colours by role */
	ck_assert_ptr_nonnull(strstr(fwd, "[label=\"{x|input|[4,3]}\", fillcolor=\"#a6cee3\""));
	ck_assert_ptr_nonnull(strstr(fwd, "[label=\"{W1|param|[3,5]}\", fillcolor=\"#b2df8a\""));
	ck_assert_ptr_nonnull(strstr(fwd, "{h|add|[4,5]}"));
	ck_assert_ptr_nonnull(strstr(fwd, "|mul_scalar\\n0.5|[4,5]}"));
	ck_assert_ptr_nonnull(strstr(fwd, "|matmul\\nA B|[4,5]}"));
	ck_assert_ptr_nonnull(strstr(fwd, "{loss|mean\\naxes 0 1|[]}"));
	/* edges: x and W1 feed the first matmul (made just before h) */
	int x = id_of(fwd, "x"), w1 = id_of(fwd, "W1"), h = id_of(fwd, "h");
	ck_assert_int_gt(x, 0);
	ck_assert_int_gt(w1, 0);
	char e[64];
	snprintf(e, sizeof e, "\tn%d -> n%d;\n", x, h - 1);
	ck_assert_ptr_nonnull(strstr(fwd, e));
	snprintf(e, sizeof e, "\tn%d -> n%d;\n", w1, h - 1);
	ck_assert_ptr_nonnull(strstr(fwd, e));
	ck_assert_int_eq(id_of(fwd, "act") > h, 1);
	int dashed;
	ck_assert_int_eq(check_edges(fwd, &dashed), 15);
	ck_assert_int_eq(dashed, 0);
	/* legend: the roles drawn, no gradient entry */
	ck_assert_ptr_nonnull(strstr(fwd, "subgraph cluster_legend"));
	ck_assert_ptr_nonnull(strstr(fwd, "[label=\"forward op\", fillcolor=\"#ffffff\"]"));
	ck_assert_ptr_null(strstr(fwd, "[label=\"gradient\""));
	free(fwd);
	check_with_dot();
	nb_graph_free(m.g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_backward_view)
{
	make_tmpdir();
	mlp m = build_mlp();
	char *bwd = dot_text(m.g, NB_DOT_BACKWARD);
	char *fwd = dot_text(m.g, NB_DOT_FORWARD);
	ck_assert_int_eq(count(bwd, " [label=\"{"), nb_graph_num_nodes(m.g) - 1);
	ck_assert_int_gt(count(bwd, "tooltip=\"gradient\""), 10);
	ck_assert_int_eq(count(bwd, "tooltip=\"optimizer update\""), 4);
	ck_assert_ptr_nonnull(strstr(bwd, "{W1.update|sgd_update\\nlr 0.05|[3,5]}"));
	ck_assert_ptr_nonnull(strstr(bwd, "{1|constant|[]}"));
	/* the optimizer's hyper-parameters: one f64 vector read by every
	 * update node, drawn in this view only */
	ck_assert_ptr_nonnull(strstr(bwd, "{sgd.hyper|constant\\nf64|[9]}"));
	ck_assert_ptr_null(strstr(fwd, "sgd.hyper"));
	int hyper = id_of(bwd, "sgd.hyper");
	const char *upd[] = {"W1.update", "b1.update", "W2.update", "b2.update"};
	for (int i = 0; i < 4; i++) {
		char he[64];
		snprintf(he, sizeof he, "\tn%d -> n%d [style=dashed];\n", hyper,
		         id_of(bwd, upd[i]));
		ck_assert_msg(strstr(bwd, he), "no edge from sgd.hyper into %s", upd[i]);
	}
	ck_assert_ptr_nonnull(strstr(bwd, "[label=\"gradient\", fillcolor=\"#fb9a99\"]"));
	int dashed;
	int edges = check_edges(bwd, &dashed);
	ck_assert_int_gt(dashed, 10);
	ck_assert_int_eq(edges - dashed, 15); /* the forward edges stay solid */
	/* the parameter W1 feeds its update node through a dashed edge */
	char e[64];
	snprintf(e, sizeof e, "\tn%d -> n%d [style=dashed];\n", id_of(bwd, "W1"),
	         id_of(bwd, "W1.update"));
	ck_assert_ptr_nonnull(strstr(bwd, e));
	/* every node line of the forward view appears unchanged in the
	 * backward view: same ids, same labels */
	for (const char *p = strstr(fwd, "\tn"); p; p = strstr(p + 1, "\tn")) {
		const char *end = strchr(p, '\n');
		char line[512];
		size_t k = (size_t)(end - p + 1);
		ck_assert(k < sizeof line);
		memcpy(line, p, k);
		line[k] = 0;
		ck_assert_msg(strstr(bwd, line), "missing in backward view: %s", line);
	}
	free(fwd);
	free(bwd);
	check_with_dot();
	nb_graph_free(m.g);
	remove_tmpdir();
}
END_TEST

/* Ids are node indices: two writes, and two separately built copies of the
 * model (different pointers), give the same bytes. */
START_TEST(test_stable_ids)
{
	make_tmpdir();
	mlp a = build_mlp(), b = build_mlp();
	for (int v = 0; v < 2; v++) {
		char *a1 = dot_text(a.g, (nb_dot_view)v), *a2 = dot_text(a.g, (nb_dot_view)v);
		char *b1 = dot_text(b.g, (nb_dot_view)v);
		ck_assert_str_eq(a1, a2);
		ck_assert_str_eq(a1, b1);
		ck_assert_ptr_null(strstr(a1, "0x"));
		free(a1), free(a2), free(b1);
	}
	check_with_dot();
	nb_graph_free(a.g);
	nb_graph_free(b.g);
	remove_tmpdir();
}
END_TEST

/* User text in record labels is escaped; dot accepts it and shows the
 * characters unchanged. */
START_TEST(test_escaping)
{
	make_tmpdir();
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *a = nb_input(g, "a|b{c}<d>\"e\\", NB_SHAPE(2));
	nb_tensor *b = nb_param(g, "two\nlines\t\\n", NB_SHAPE(2), NB_ONES);
	nb_tensor *c = nb_param(g, "\\", NB_SHAPE(2), NB_ONES); /* only a backslash */
	nb_tensor *d = nb_param(g, "", NB_SHAPE(2), NB_ONES);   /* empty name */
	nb_tensor *L = nb_sum(nb_mul(nb_add(a, b), nb_add(c, d)));
	nb_set_name(L, "\"quoted\" <L>");
	ck_assert_ptr_nonnull(nb_sgd(g, L, (nb_sgd_opts){.lr = 0.1}));
	ck_graph_ok(g);
	char *s = dot_text(g, NB_DOT_BACKWARD);
	ck_assert_ptr_nonnull(strstr(s, "[label=\"{a\\|b\\{c\\}\\<d\\>\\\"e\\\\|input|[2]}\""));
	ck_assert_ptr_nonnull(strstr(s, "[label=\"{two\\nlines \\\\n|param|[2]}\""));
	ck_assert_ptr_nonnull(strstr(s, "[label=\"{\\\\|param|[2]}\""));
	ck_assert_ptr_nonnull(strstr(s, "[label=\"{|param|[2]}\""));
	ck_assert_ptr_nonnull(strstr(s, "{\\\"quoted\\\" \\<L\\>|sum\\naxes 0|[]}"));
	/* no raw newline inside a label: every line is a comment, a
	 * statement or a brace */
	for (const char *p = s; *p; p = strchr(p, '\n') + 1) {
		ck_assert_msg(*p == '/' || *p == '\t' || *p == '}' || !strncmp(p, "digraph", 7),
		              "stray line: %.40s", p);
		if (!strchr(p, '\n'))
			break;
	}
	free(s);
	if (have_dot()) {
		check_with_dot();
		/* graphviz shows the name's characters as written */
		char *svg = nb_test_read_file(path_in_tmp("g0.dot.svg"));
		ck_assert_ptr_nonnull(strstr(svg, ">a|b{c}&lt;d&gt;&quot;e\\</text>"));
		ck_assert_ptr_nonnull(strstr(svg, ">&quot;quoted&quot; &lt;L&gt;</text>"));
		ck_assert_ptr_nonnull(strstr(svg, ">lines \\n</text>"));
		free(svg);
	} else {
		fprintf(stderr,
		        "test_dot: the dot program is not installed; skipping dot -Tsvg checks\n");
	}
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

/* The placeholder is never drawn, and a failed graph can still be written
 * (to see how far the model got). */
START_TEST(test_placeholder_not_drawn)
{
	make_tmpdir();
	nb_graph *g = nb_graph_new(NB_F32);
	nb_tensor *x = nb_input(g, "x", NB_SHAPE(2, 3));
	nb_tensor *bad = nb_matmul(x, x); /* fails: [2,3] x [2,3] */
	ck_assert_int_eq(nb_graph_status(g), NB_ERR_SHAPE);
	char *s = dot_text(g, NB_DOT_BACKWARD);
	ck_assert_int_eq(count(s, " [label=\"{"), 1);
	ck_assert_ptr_null(strstr(s, "error"));
	free(s);
	/* after clearing, a node built on the placeholder is drawn without it */
	nb_graph_clear_error(g);
	nb_tensor *y = nb_exp(bad);
	ck_graph_ok(g);
	(void)y;
	s = dot_text(g, NB_DOT_FORWARD);
	ck_assert_int_eq(count(s, " [label=\"{"), 2);
	ck_assert_ptr_null(strstr(s, "error"));
	ck_assert_ptr_null(strstr(s, "\tn0"));
	int dashed;
	ck_assert_int_eq(check_edges(s, &dashed), 0);
	free(s);
	check_with_dot();
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

/* Constants made by the backward pass stay out of the forward view even
 * when nothing reads them (a zero gradient). */
START_TEST(test_backward_constants_hidden)
{
	make_tmpdir();
	nb_graph *g = nb_graph_new(NB_F64);
	nb_tensor *w = nb_param(g, "w", NB_SHAPE(3), NB_ONES);
	nb_tensor *u = nb_param(g, "unused", NB_SHAPE(3), NB_ONES);
	nb_tensor *c = nb_constant(g, "c", NB_SHAPE(3), (double[]){1, 2, 3});
	nb_tensor *L = nb_sum(nb_mul(w, c));
	int before = nb_graph_num_nodes(g);
	nb_tensor *du = nb_grad(L, u); /* zeros: a constant nobody reads */
	ck_graph_ok(g);
	ck_assert_int_gt(nb_graph_num_nodes(g), before);
	char *s = dot_text(g, NB_DOT_FORWARD);
	ck_assert_int_eq(count(s, " [label=\"{"), before - 1);
	ck_assert_ptr_nonnull(strstr(s, "{c|constant|[3]}"));
	free(s);
	s = dot_text(g, NB_DOT_BACKWARD);
	ck_assert_int_eq(count(s, " [label=\"{"), nb_graph_num_nodes(g) - 1);
	ck_assert_ptr_nonnull(strstr(s, "{0|constant|[3]}"));
	free(s);
	(void)du;
	check_with_dot();
	nb_graph_free(g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_render)
{
	make_tmpdir();
	mlp m = build_mlp();
	const char *svg = path_in_tmp("model.svg");
	nb_status st = nb_graph_render(m.g, svg, "svg", NB_DOT_BACKWARD);
	if (NABLA_HAVE_GVC) {
		ck_assert_msg(st == NB_OK, "%s", nb_graph_errmsg(m.g));
		char *s = nb_test_read_file(svg);
		ck_assert_ptr_nonnull(strstr(s, "<svg"));
		ck_assert_ptr_nonnull(strstr(s, ">W1.update</text>"));
		ck_assert_ptr_nonnull(strstr(s, "</svg>"));
		free(s);
		/* an unknown format is the caller's mistake */
		st = nb_graph_render(m.g, path_in_tmp("model.xyz"), "no-such-format",
		                     NB_DOT_FORWARD);
		ck_assert_int_eq(st, NB_ERR_ARG);
		ck_assert_ptr_nonnull(strstr(
		    nb_graph_errmsg(m.g), "cannot render format 'no-such-format' (it renders: "));
		ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), " svg "));
		ck_assert_int_eq(access(path_in_tmp("model.xyz"), F_OK), -1);
		nb_graph_clear_error(m.g);
		/* Graphviz would exit() on an unwritable path; nabla returns */
		st = nb_graph_render(m.g, "/nonexistent-dir/model.svg", "svg", NB_DOT_FORWARD);
		ck_assert_int_eq(st, NB_ERR_IO);
		ck_assert_ptr_nonnull(
		    strstr(nb_graph_errmsg(m.g), "render(/nonexistent-dir/model.svg)"));
		ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), strerror(ENOENT)));
	} else {
		ck_assert_int_eq(st, NB_ERR_ARG);
		ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), "without Graphviz's libgvc"));
		ck_assert_str_eq(nb_graph_render_formats(), "");
		fprintf(stderr, "test_dot: built without libgvc; only the error path is tested\n");
	}
	nb_graph_free(m.g);
	remove_tmpdir();
}
END_TEST

/* Every format Graphviz lists renders to a non-empty file, or fails
 * with NB_ERR_FORMAT writing nothing (a plugin Graphviz lists but has
 * disabled, as gd in Debian's build); the common ones have their magic
 * bytes; the display devices and vdx are not listed and are refused. */
START_TEST(test_render_every_format)
{
	if (!NABLA_HAVE_GVC)
		return;
	make_tmpdir();
	mlp m = build_mlp();
	const char *list = nb_graph_render_formats();
	ck_assert_ptr_eq(list, nb_graph_render_formats()); /* made once */
	static const struct {
		const char *format, *magic;
	} magic[] = {{"svg", "<?xml"}, {"png", "\x89PNG\r\n"}, {"pdf", "%PDF-"}, {"ps", "%!PS"}};
	for (size_t i = 0; i < sizeof magic / sizeof *magic; i++)
		ck_assert_msg(strstr(list, magic[i].format), "%s not in '%s'", magic[i].format,
		              list);
	char *copy = strdup(list), *save = NULL;
	int rendered = 0;
	for (char *f = strtok_r(copy, " ", &save); f; f = strtok_r(NULL, " ", &save)) {
		char name[64];
		snprintf(name, sizeof name, "model.%s", f);
		const char *p = path_in_tmp(name);
		nb_status st = nb_graph_render(m.g, p, f, NB_DOT_FORWARD);
		struct stat sb;
		if (st == NB_OK) {
			ck_assert_msg(stat(p, &sb) == 0 && sb.st_size > 0, "%s: empty", f);
			rendered++;
		} else {
			ck_assert_msg(st == NB_ERR_FORMAT, "%s: %s", f, nb_graph_errmsg(m.g));
			ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), "wrote nothing"));
			ck_assert_int_eq(access(p, F_OK), -1);
			nb_graph_clear_error(m.g);
		}
		for (size_t k = 0; k < sizeof magic / sizeof *magic; k++)
			if (!strcmp(f, magic[k].format)) {
				ck_assert_int_eq(st, NB_OK);
				char *s = nb_test_read_file(p);
				ck_assert_msg(!memcmp(s, magic[k].magic, strlen(magic[k].magic)),
				              "%s: wrong magic", f);
				free(s);
			}
	}
	free(copy);
	ck_assert_int_ge(rendered, 4);
	static const char *const display[] = {"x11", "xlib", "gtk", "vdx"}; /* vdx crashes */
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(!strstr(list, display[i]), "%s listed", display[i]);
		ck_assert_int_eq(nb_graph_render(m.g, path_in_tmp("w"), display[i], NB_DOT_FORWARD),
		                 NB_ERR_ARG);
		nb_graph_clear_error(m.g);
	}
	ck_assert_int_eq(access(path_in_tmp("w"), F_OK), -1);
	nb_graph_free(m.g);
	remove_tmpdir();
}
END_TEST

/* Files are written atomically: through a symbolic link the target gets
 * the new content and the link stays; what a killed save left for the same
 * file (<file>.tmp.<pid>.XXXXXX of a dead pid) is removed. */
START_TEST(test_save_atomic)
{
	make_tmpdir();
	mlp m = build_mlp();
	pid_t dead = fork();
	ck_assert_int_ge(dead, 0);
	if (dead == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
	char stale[200], link[200], target[200], buf[64];
	snprintf(stale, sizeof stale, "%s/a.dot.tmp.%d.Ab12Cd", tmpdir, (int)dead);
	snprintf(link, sizeof link, "%s/l.dot", tmpdir);
	snprintf(target, sizeof target, "%s/a.dot", tmpdir);
	FILE *fp = fopen(stale, "w");
	ck_assert_ptr_nonnull(fp);
	fclose(fp);
	ck_assert_int_eq(symlink("a.dot", link), 0);
	ck_assert_int_eq(nb_graph_save_dot(m.g, link, NB_DOT_FORWARD), NB_OK);
	ssize_t n = readlink(link, buf, sizeof buf - 1);
	ck_assert_int_eq(n, 5);
	buf[n] = 0;
	ck_assert_str_eq(buf, "a.dot");
	char *text = nb_test_read_file(target);
	ck_assert_ptr_nonnull(strstr(text, "digraph"));
	free(text);
	ck_assert_int_ne(access(stale, F_OK), 0);
	/* a special file is written as it is, not replaced */
	ck_assert_int_eq(nb_graph_save_dot(m.g, "/dev/null", NB_DOT_FORWARD), NB_OK);
	struct stat sb;
	ck_assert(stat("/dev/null", &sb) == 0 && S_ISCHR(sb.st_mode));
	nb_graph_free(m.g);
	remove_tmpdir();
}
END_TEST

START_TEST(test_io_errors)
{
	mlp m = build_mlp();
	nb_status st = nb_graph_save_dot(m.g, "/nonexistent-dir/model.dot", NB_DOT_FORWARD);
	ck_assert_int_eq(st, NB_ERR_IO);
	ck_assert_int_eq(nb_graph_status(m.g), NB_ERR_IO);
	ck_assert_str_eq(nb_graph_errmsg(m.g),
	                 "save_dot(/nonexistent-dir/model.dot): cannot open for writing: No such "
	                 "file or directory");
	nb_graph_clear_error(m.g);
	/* a stream that cannot be written */
	FILE *ro = fopen("/dev/null", "r");
	ck_assert_ptr_nonnull(ro);
	ck_assert_int_eq(nb_graph_write_dot(m.g, ro, NB_DOT_FORWARD), NB_ERR_IO);
	ck_assert_ptr_nonnull(
	    strstr(nb_graph_errmsg(m.g), "write_dot(stream): writing DOT failed: "));
	fclose(ro);
	nb_graph_clear_error(m.g);
	/* a full device: the open works, the writes fail */
	if (access("/dev/full", W_OK) == 0) {
		ck_assert_int_eq(nb_graph_save_dot(m.g, "/dev/full", NB_DOT_BACKWARD), NB_ERR_IO);
		ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), "save_dot(/dev/full)"));
		ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), strerror(ENOSPC)));
		nb_graph_clear_error(m.g);
	}
	/* bad arguments */
	ck_assert_int_eq(nb_graph_write_dot(NULL, stdout, NB_DOT_FORWARD), NB_ERR_ARG);
	ck_assert_int_eq(nb_graph_save_dot(NULL, "x.dot", NB_DOT_FORWARD), NB_ERR_ARG);
	ck_assert_int_eq(nb_graph_render(NULL, "x.svg", "svg", NB_DOT_FORWARD), NB_ERR_ARG);
	ck_assert_int_eq(nb_graph_write_dot(m.g, NULL, NB_DOT_FORWARD), NB_ERR_ARG);
	ck_assert_str_eq(nb_graph_errmsg(m.g), "write_dot: the FILE pointer is NULL");
	nb_graph_clear_error(m.g);
	ck_assert_int_eq(nb_graph_save_dot(m.g, NULL, NB_DOT_FORWARD), NB_ERR_ARG);
	nb_graph_clear_error(m.g);
	ck_assert_int_eq(nb_graph_write_dot(m.g, stdout, (nb_dot_view)7), NB_ERR_ARG);
	ck_assert_ptr_nonnull(strstr(nb_graph_errmsg(m.g), "unknown view 7"));
	nb_graph_clear_error(m.g);
	ck_assert_int_eq(nb_graph_render(m.g, "x.svg", NULL, NB_DOT_FORWARD), NB_ERR_ARG);
	if (NABLA_HAVE_GVC)
		ck_assert_str_eq(nb_graph_errmsg(m.g), "render: the format is NULL");
	nb_graph_free(m.g);
}
END_TEST

/* Every op of the table, on its own gradcheck example with its backward
 * pass: both views are valid DOT, and each op's node shows its label. */
START_TEST(test_every_op)
{
	make_tmpdir();
	int n_ops = 0;
	for (int op = 0; op < nb_num_ops(); op++) {
		if (!nb_op_is_checkable(op) || !nb__ops[op]->example)
			continue;
		nb_graph *g = nb_graph_new(NB_F64);
		nb_tensor *wrt[8], *grads[8];
		int n = 0;
		nb_tensor *y = nb__ops[op]->example(g, wrt, &n);
		ck_assert_msg(nb_graph_status(g) == NB_OK, "%s: %s", nb_op_name(op),
		              nb_graph_errmsg(g));
		ck_assert_int_eq(nb_grads(nb_sum(y), wrt, n, grads), NB_OK);
		char *fwd = dot_text(g, NB_DOT_FORWARD), *bwd = dot_text(g, NB_DOT_BACKWARD);
		char want[320];
		/* the node's op as drawn: a custom op's registered name */
		int k = snprintf(want, sizeof want, "|%s", nb_tensor_op(y));
		if (nb__ops[op]->label && y->op == op) {
			char label[256];
			nb__ops[op]->label(y, label, sizeof label);
			if (label[0])
				snprintf(want + k, sizeof want - (size_t)k, "\\n%s|", label);
		}
		if (y->op == op) /* some examples wrap the op (sign: x * sign(x)) */
			ck_assert_msg(strstr(fwd, want), "%s: no node with \"%s\"", nb_op_name(op),
			              want);
		ck_assert_int_gt(count(bwd, " [label=\"{"), count(fwd, " [label=\"{"));
		free(fwd);
		free(bwd);
		nb_graph_free(g);
		n_ops++;
	}
	ck_assert_int_gt(n_ops, 20);
	check_with_dot();
	remove_tmpdir();
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("dot");
	TCase *tc = tcase_create("dot");
	tcase_add_test(tc, test_forward_view);
	tcase_add_test(tc, test_backward_view);
	tcase_add_test(tc, test_stable_ids);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_placeholder_not_drawn);
	tcase_add_test(tc, test_backward_constants_hidden);
	tcase_add_test(tc, test_render);
	tcase_add_test(tc, test_render_every_format);
	tcase_add_test(tc, test_io_errors);
	tcase_add_test(tc, test_save_atomic);
	tcase_add_test(tc, test_every_op);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return nb_test_run(suite());
}
