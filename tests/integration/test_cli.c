#include "harness.h"
int main(int argc, char **argv)
{
    h_init(argc, argv, "cli");
    return h_finish();
}
