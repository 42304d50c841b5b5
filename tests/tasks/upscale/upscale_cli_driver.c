/* upscale_cli_driver.c - runs `p2c2r upscale` (src/cli/cmd_upscale.c) as its
 * own program, so the tests can exercise the command before the lead wires
 * it into p2c2r's main.  Usage: upscale_cli_driver IN OUT [OPTIONS]. */
int cmd_upscale(int argc, char **argv);

int main(int argc, char **argv)
{
    return cmd_upscale(argc, argv);
}
