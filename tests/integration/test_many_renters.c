#include "harness.h"
int main(int argc, char **argv)
{
    h_init(argc, argv, "many_renters");
    return h_finish();
}
