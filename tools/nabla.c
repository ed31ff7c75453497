/* nabla — command-line front end (grows per subcommand) */
#include "nabla.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--version")) {
		printf("nabla %s\n", nb_version());
		return 0;
	}
	printf("usage: nabla <command> [options]\n");
	return argc > 1;
}
