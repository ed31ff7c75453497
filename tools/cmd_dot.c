/* nabla dot — not written yet */
#include "cli.h"

int cmd_dot(int argc, char **argv)
{
	(void)argc;
	fprintf(stderr, "nabla: '%s' is not available yet\n", argv[0]);
	return 1;
}
