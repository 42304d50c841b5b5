/* rt_render_cli.c - runs `p2c2r render` (cmd_render in src/cli/cmd_render.c)
 * as a program of its own, so the tests and the benchmark do not depend on
 * the p2c2r dispatcher: `rt_render_cli SCENE.json -o FRAME.png ...` is
 * `p2c2r render SCENE.json -o FRAME.png ...`. */
int cmd_render(int argc, char **argv);

int main(int argc, char **argv)
{
    return cmd_render(argc, argv);
}
