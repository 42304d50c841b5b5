/* pf_cli_driver.c - runs `p2c2r path` (cmd_path in src/cli/cmd_path.c) as a
 * program of its own, for the tests, until the command is wired into p2c2r's
 * main: `pf_cli_driver path ARGS...` behaves as `p2c2r path ARGS...`. */
#include <stdio.h>
#include <string.h>

int cmd_path(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "path") != 0) {
        fprintf(stderr, "usage: %s path MAP --from X,Y --to X,Y [OPTIONS]\n", argv[0]);
        return 2;
    }
    return cmd_path(argc - 1, argv + 1);
}
