/*
 * Graphviz DOT export.
 *
 * One record-shaped node per tensor, labelled {name | op | shape}, filled
 * by role; ids are node indices ("n12"), never pointers, so two exports of
 * the same graph are byte-identical and a changed model diffs cleanly.
 * The forward view draws what the user built (leaves and forward ops); the
 * backward view adds the gradient and optimizer-update nodes, with dashed
 * edges into them.  See docs/dot.md.
 *
 * Rendering in-process goes through libgvc when nabla was built with it.
 * Graphviz's own file output ends the process when the file cannot be opened, so
 * nb_graph_render lays out and renders into memory and writes the file
 * itself.
 */
#include "graph/internal.h"
#include "io/wfile.h"

#include "nabla_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if NABLA_HAVE_GVC
#include <gvc.h>
#endif

/* Fill colours by role (ColorBrewer "Paired" light tones, readable with
 * black text); docs/dot.md lists the same table. */
static const struct {
	const char *name, *fill;
} role_style[] = {
    [NB_ROLE_INPUT] = {"input", "#a6cee3"},
    [NB_ROLE_PARAM] = {"parameter", "#b2df8a"},
    [NB_ROLE_CONST] = {"constant", "#e0e0e0"},
    [NB_ROLE_STATE] = {"state", "#fdbf6f"},
    [NB_ROLE_OP] = {"forward op", "#ffffff"},
    [NB_ROLE_GRAD] = {"gradient", "#fb9a99"},
    [NB_ROLE_UPDATE] = {"optimizer update", "#cab2d6"},
};
#define N_ROLES ((int)(sizeof role_style / sizeof role_style[0]))

/* Write s as text of one record field inside a quoted DOT string.  The
 * record parser treats { } | < > as structure unless backslash-escaped; the
 * string lexer ends at an unescaped quote; a backslash of the text is
 * written doubled (the record parser keeps "\\", the label's escape pass
 * turns it into one).  Because a field is always followed by '|' or '}',
 * a doubled backslash never meets the closing quote. */
static void put_field(FILE *fp, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '{' || c == '}' || c == '|' || c == '<' || c == '>' || c == '"' ||
		    c == '\\') {
			fputc('\\', fp);
			fputc(c, fp);
		} else if (c == '\n') {
			fputs("\\n", fp);
		} else if (c < 0x20 || c == 0x7f) {
			fputc(' ', fp); /* tabs, CR, other controls */
		} else {
			fputc(c, fp);
		}
	}
}

/* Which nodes the view draws (vis[0..n), with n more zeroed bytes after
 * it for scratch).  The forward view keeps inputs, parameters,
 * constants, state and forward ops, and leaves out gradient and update
 * nodes and the constants made for the backward pass: those flagged when
 * created, and any constant read only by hidden nodes (an optimizer's
 * hyper-parameter, say).  The error placeholder is never drawn. */
static void select_nodes(const nb_graph *g, nb_dot_view view, unsigned char *vis)
{
	int n = g->n_nodes;
	for (int i = 0; i < n; i++) {
		const nb_tensor *t = g->nodes[i];
		vis[i] = !nb__is_placeholder(t);
		if (view == NB_DOT_FORWARD && vis[i])
			vis[i] = t->role != NB_ROLE_GRAD && t->role != NB_ROLE_UPDATE &&
			         !(t->role == NB_ROLE_CONST && (t->flags & NB_TF_BACKWARD));
	}
	if (view != NB_DOT_FORWARD)
		return;
	/* bit 0: read by some node; bit 1: read by a drawn node.  Leaves have
	 * no inputs, so the visibility of readers is already final. */
	unsigned char *use = vis + n; /* zeroed by the caller */
	for (int i = 0; i < n; i++) {
		const nb_tensor *t = g->nodes[i];
		for (int k = 0; k < t->n_in; k++)
			use[t->in[k]->id] |= (unsigned char)(1 | (vis[i] ? 2 : 0));
	}
	for (int i = 0; i < n; i++)
		if (g->nodes[i]->role == NB_ROLE_CONST && use[i] == 1)
			vis[i] = 0;
}

static void put_node(FILE *fp, const nb_tensor *t)
{
	const nb_opdef *def = nb__ops[t->op];
	char shape[128], label[256] = "";
	const char *op = t->role == NB_ROLE_STATE ? "state" : nb__op_name(t);
	if (def->label)
		def->label(t, label, sizeof label);
	else if (t->flags & NB_TF_F64) /* an optimizer's hyper-parameters */
		snprintf(label, sizeof label, "f64");
	fprintf(fp, "\tn%d [label=\"{", t->id);
	put_field(fp, t->name ? t->name : "");
	fputc('|', fp);
	put_field(fp, op);
	if (label[0]) {
		fputs("\\n", fp);
		put_field(fp, label);
	}
	fputc('|', fp);
	put_field(fp, nb_shape_str(t->shape, shape, sizeof shape));
	fprintf(fp, "}\", fillcolor=\"%s\", tooltip=\"%s\"];\n", role_style[t->role].fill,
	        role_style[t->role].name);
}

static void put_legend(FILE *fp, const bool *present)
{
	fputs("\tsubgraph cluster_legend {\n"
	      "\t\tlabel=\"legend\"; style=dashed; color=\"#999999\"; fontsize=10;\n"
	      "\t\tnode [shape=box, style=\"rounded,filled\", fontsize=9];\n",
	      fp);
	int prev = -1; /* invisible edges keep the legend in role order */
	for (int r = 0; r < N_ROLES; r++) {
		if (!present[r])
			continue;
		fprintf(fp, "\t\tlegend_%d [label=\"%s\", fillcolor=\"%s\"];\n", r,
		        role_style[r].name, role_style[r].fill);
		if (prev >= 0)
			fprintf(fp, "\t\tlegend_%d -> legend_%d [style=invis];\n", prev, r);
		prev = r;
	}
	fputs("\t}\n", fp);
}

static void put_graph(FILE *fp, const nb_graph *g, nb_dot_view view, const unsigned char *vis)
{
	bool present[N_ROLES] = {0};
	int shown = 0;
	for (int i = 0; i < g->n_nodes; i++)
		if (vis[i]) {
			present[g->nodes[i]->role] = true;
			shown++;
		}
	const char *vname = view == NB_DOT_FORWARD ? "forward" : "backward";
	fprintf(fp, "// nabla %s graph, %s view: %d of %d nodes.\n", nb_dtype_name(g->dtype), vname,
	        shown, g->n_nodes);
	fputs("// Node ids are node indices; labels are {name | op | shape}.\n// Fill by role:",
	      fp);
	for (int r = 0; r < N_ROLES; r++)
		fprintf(fp, "%s %s %s", r ? "," : "", role_style[r].name, role_style[r].fill);
	fputs(".\n// Edges into gradient and update nodes are dashed.\n", fp);
	fprintf(fp,
	        "digraph nabla {\n"
	        "\tgraph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, labelloc=t, "
	        "label=\"nabla %s graph, %s view\"];\n"
	        "\tnode [shape=record, style=filled, fontname=\"Helvetica\", fontsize=10];\n"
	        "\tedge [color=\"#555555\", arrowsize=0.7];\n",
	        nb_dtype_name(g->dtype), vname);
	for (int i = 0; i < g->n_nodes; i++)
		if (vis[i])
			put_node(fp, g->nodes[i]);
	for (int i = 0; i < g->n_nodes; i++) {
		const nb_tensor *t = g->nodes[i];
		if (!vis[i])
			continue;
		bool dashed = t->role == NB_ROLE_GRAD || t->role == NB_ROLE_UPDATE;
		for (int k = 0; k < t->n_in; k++)
			if (vis[t->in[k]->id])
				fprintf(fp, "\tn%d -> n%d%s;\n", t->in[k]->id, t->id,
				        dashed ? " [style=dashed]" : "");
	}
	put_legend(fp, present);
	fputs("}\n", fp);
}

/* ---- public entry points ------------------------------------------------- */

static nb_status check_view(nb_graph *g, nb_dot_view view, const char *what)
{
	if (view != NB_DOT_FORWARD && view != NB_DOT_BACKWARD) {
		nb__fail(g, NB_ERR_ARG,
		         "%s: unknown view %d (use NB_DOT_FORWARD or NB_DOT_BACKWARD)", what,
		         (int)view);
		return NB_ERR_ARG;
	}
	return NB_OK;
}

/* Write the DOT text to fp and flush it.  what/path name the caller in
 * error messages (path may be NULL). */
static nb_status emit(nb_graph *g, FILE *fp, nb_dot_view view, const char *what, const char *path)
{
	unsigned char *vis = calloc(2 * (size_t)g->n_nodes + 1, 1);
	if (!vis) {
		nb__fail(g, NB_ERR_NOMEM, "%s: out of memory", what);
		return NB_ERR_NOMEM;
	}
	select_nodes(g, view, vis);
	errno = 0;
	put_graph(fp, g, view, vis);
	free(vis);
	if (fflush(fp) != 0 || ferror(fp)) {
		int e = errno ? errno : EIO;
		nb__fail(g, NB_ERR_IO, "%s(%s): writing DOT failed: %s", what,
		         path ? path : "stream", strerror(e));
		return NB_ERR_IO;
	}
	return NB_OK;
}

nb_status nb_graph_write_dot(nb_graph *g, FILE *fp, nb_dot_view view)
{
	if (!g)
		return NB_ERR_ARG;
	if (!fp) {
		nb__fail(g, NB_ERR_ARG, "write_dot: the FILE pointer is NULL");
		return NB_ERR_ARG;
	}
	nb_status st = check_view(g, view, "write_dot");
	return st ? st : emit(g, fp, view, "write_dot", NULL);
}

/* Files are written atomically (io/wfile.h); an existing special file
 * such as /dev/stdout is written directly. */
static bool open_for_writing(nb_graph *g, nb__wfile *w, const char *path, const char *what)
{
	char err[512];
	if (nb__wfile_open(w, path, true, err, sizeof err) == 0)
		return true;
	nb__fail(g, NB_ERR_IO, "%s(%s): cannot open for writing: %s", what, path, err);
	return false;
}

/* Commits w when st is NB_OK, else abandons it. */
static nb_status close_written(nb_graph *g, nb__wfile *w, nb_status st, const char *path,
                               const char *what)
{
	char err[640];
	if (st != NB_OK) {
		nb__wfile_abort(w);
		return st;
	}
	if (nb__wfile_commit(w, err, sizeof err) != 0) {
		nb__fail(g, NB_ERR_IO, "%s(%s): %s", what, path, err);
		st = NB_ERR_IO;
	}
	return st;
}

nb_status nb_graph_save_dot(nb_graph *g, const char *path, nb_dot_view view)
{
	if (!g)
		return NB_ERR_ARG;
	if (!path) {
		nb__fail(g, NB_ERR_ARG, "save_dot: the path is NULL");
		return NB_ERR_ARG;
	}
	nb_status st = check_view(g, view, "save_dot");
	if (st)
		return st;
	nb__wfile w;
	if (!open_for_writing(g, &w, path, "save_dot"))
		return NB_ERR_IO;
	st = emit(g, w.fp, view, "save_dot", path);
	return close_written(g, &w, st, path, "save_dot");
}

#if NABLA_HAVE_GVC

/* Graphviz reports through agerr(); while rendering, its messages land
 * here instead of on stderr.  A message comes in pieces ("Error", ": ",
 * the text); the first line is kept for nabla's message. */
static char gv_msg[256];
static bool gv_msg_done;

static int gv_capture(char *msg)
{
	if (gv_msg_done || !msg)
		return 0;
	size_t k = strlen(gv_msg);
	snprintf(gv_msg + k, sizeof gv_msg - k, "%s", msg);
	char *nl = strchr(gv_msg, '\n');
	if (nl || strlen(gv_msg) + 1 >= sizeof gv_msg) {
		if (nl)
			*nl = 0;
		gv_msg_done = true;
	}
	return 0;
}

/* One Graphviz context for the process, made on first use and kept: the
 * pango text-layout plugin of Graphviz 2.4x caches a pointer to the last
 * font name, which a freed context leaves dangling (a use-after-free on
 * the next context's first label).  Rendering is not thread-safe. */
static GVC_t *gv_context;

static GVC_t *gv_ctx(void)
{
	if (!gv_context)
		gv_context = gvContext();
	return gv_context;
}

/* Devices left out: the display devices open a window instead of writing
 * a file, and Graphviz's Visio plugin (vdx; 2.43 at least) crashes on a
 * node with a tooltip and no URL (strdup(NULL) in Visio::Hyperlink; `echo
 * 'digraph{a [tooltip="x"]}' | dot -Tvdx` dies too), and every node nabla
 * writes has a tooltip. */
static bool gv_left_out(const char *name)
{
	return !strcmp(name, "gtk") || !strcmp(name, "x11") || !strcmp(name, "xlib") ||
	       !strcmp(name, "vdx");
}

/* The list, built on first use from the device plugins Graphviz loads
 * (what `dot -T?` offers); kept for the process like the context. */
static char *gv_formats;

const char *nb_graph_render_formats(void)
{
	if (gv_formats)
		return gv_formats;
	GVC_t *gvc = gv_ctx();
	int n = 0;
	char **names = gvc ? gvPluginList(gvc, "device", &n, NULL) : NULL;
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(names[i]) + 1;
	char *list = malloc(len);
	if (list) {
		list[0] = 0;
		for (int i = 0; i < n; i++)
			if (!gv_left_out(names[i]) && (i == 0 || strcmp(names[i], names[i - 1]))) {
				if (list[0])
					strcat(list, " ");
				strcat(list, names[i]);
			}
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	gv_formats = list;
	return list ? list : "";
}

/* whether format is a word of nb_graph_render_formats() */
static bool gv_has_format(const char *format)
{
	const char *list = nb_graph_render_formats();
	size_t k = strlen(format);
	for (const char *p = list; k && (p = strstr(p, format)); p += k)
		if ((p == list || p[-1] == ' ') && (p[k] == ' ' || p[k] == 0))
			return true;
	return false;
}

/* Lay out text with dot and render it into memory as format. */
static nb_status gv_render(nb_graph *g, const char *text, const char *path, const char *format,
                           char **out, unsigned int *len)
{
	nb_status st = NB_OK;
	gv_msg[0] = 0;
	gv_msg_done = false;
	agusererrf prev = agseterrf(gv_capture);
	GVC_t *gvc = gv_ctx();
	Agraph_t *G = gvc ? agmemread(text) : NULL;
	if (!gvc || !G) {
		nb__fail(g, NB_ERR_FORMAT, "render(%s): Graphviz could not read the DOT text: %s",
		         path, gv_msg[0] ? gv_msg : "no context");
		st = NB_ERR_FORMAT;
	} else if (gvLayout(gvc, G, "dot") != 0) {
		nb__fail(g, NB_ERR_FORMAT, "render(%s): Graphviz layout failed: %s", path, gv_msg);
		st = NB_ERR_FORMAT;
	} else {
		if (gvRenderData(gvc, G, format, out, len) != 0) {
			nb__fail(g, NB_ERR_ARG,
			         "render(%s): Graphviz cannot render format '%s' (%s)", path,
			         format, gv_msg);
			st = NB_ERR_ARG;
		} else if (*len == 0) { /* a plugin present but disabled (gd) */
			nb__fail(g, NB_ERR_FORMAT,
			         "render(%s): Graphviz wrote nothing for format '%s'%s%s", path,
			         format, gv_msg[0] ? ": " : "", gv_msg);
			st = NB_ERR_FORMAT;
		}
		gvFreeLayout(gvc, G);
	}
	if (G)
		agclose(G);
	agseterrf(prev);
	return st;
}

nb_status nb_graph_render(nb_graph *g, const char *path, const char *format, nb_dot_view view)
{
	if (!g)
		return NB_ERR_ARG;
	if (!path || !format) {
		nb__fail(g, NB_ERR_ARG, "render: the %s is NULL", path ? "format" : "path");
		return NB_ERR_ARG;
	}
	nb_status st = check_view(g, view, "render");
	if (st)
		return st;
	if (!gv_has_format(format)) {
		char b[64];
		nb__fail(g, NB_ERR_ARG,
		         "render(%s): Graphviz cannot render format '%s' (it renders: %s)", path,
		         nb__shown(format, b, sizeof b), nb_graph_render_formats());
		return NB_ERR_ARG;
	}
	char *text = NULL, *out = NULL;
	size_t tlen = 0;
	unsigned int olen = 0;
	FILE *mem = open_memstream(&text, &tlen);
	if (!mem) {
		nb__fail(g, NB_ERR_NOMEM, "render(%s): out of memory", path);
		return NB_ERR_NOMEM;
	}
	st = emit(g, mem, view, "render", path);
	if (fclose(mem) != 0 && st == NB_OK) {
		nb__fail(g, NB_ERR_NOMEM, "render(%s): out of memory", path);
		st = NB_ERR_NOMEM;
	}
	if (st == NB_OK)
		st = gv_render(g, text, path, format, &out, &olen);
	free(text);
	if (st == NB_OK) {
		nb__wfile w;
		if (!open_for_writing(g, &w, path, "render")) {
			st = NB_ERR_IO;
		} else {
			if (olen && fwrite(out, 1, olen, w.fp) != olen) {
				nb__fail(g, NB_ERR_IO, "render(%s): writing failed: %s", path,
				         strerror(errno));
				st = NB_ERR_IO;
			}
			st = close_written(g, &w, st, path, "render");
		}
	}
	if (out)
		gvFreeRenderData(out);
	return st;
}

#else

const char *nb_graph_render_formats(void)
{
	return "";
}

nb_status nb_graph_render(nb_graph *g, const char *path, const char *format, nb_dot_view view)
{
	(void)view;
	if (!g)
		return NB_ERR_ARG;
	nb__fail(g, NB_ERR_ARG,
	         "render(%s): nabla was built without Graphviz's libgvc (install libgraphviz-dev "
	         "and reconfigure); write the graph with nb_graph_save_dot and run "
	         "`dot -T%s graph.dot -o %s`",
	         path ? path : "NULL", format ? format : "svg", path ? path : "out");
	return NB_ERR_ARG;
}

#endif
