/* phys_cli_driver.c - runs `p2c2r physics` (cmd_physics in
 * src/cli/cmd_physics.c) as a program of its own, for the tests, until the
 * command is wired into p2c2r's main: `phys_cli_driver physics ARGS...`
 * behaves as `p2c2r physics ARGS...`. */
#include <stdio.h>
#include <string.h>

int cmd_physics(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "physics") != 0) {
        fprintf(stderr, "usage: %s physics SCENE.json [OPTIONS]\n", argv[0]);
        return 2;
    }
    return cmd_physics(argc - 1, argv + 1);
}
