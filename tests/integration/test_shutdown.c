#include "harness.h"
int main(int argc, char **argv)
{
    h_init(argc, argv, "shutdown");
    return h_finish();
}
