#include "harness.h"
int main(int argc, char **argv)
{
    h_init(argc, argv, "bad_input");
    return h_finish();
}
