#include "harness.h"
int main(int argc, char **argv)
{
    h_init(argc, argv, "peer_kill");
    return h_finish();
}
