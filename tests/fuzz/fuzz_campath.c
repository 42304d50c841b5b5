/* fuzz_campath.c - libFuzzer target: the input is a scene file as `p2c2r
 * render --frames` reads it (src/cli/campath.c).
 *
 * Each call runs on a heap copy of exactly the bytes given, for frames 0, 1
 * and 4 of 5.  Contract: the result is 0, -1 with a non-empty reason, or
 * -2; on 0 the text is a JSON object without "camera_path" and
 * "camera_interp" whose length is *out_len, and the same call again gives
 * the same bytes. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/campath.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    static const uint32_t frames[] = {0, 1, 4};
    for (size_t k = 0; k < sizeof(frames) / sizeof(frames[0]); k++) {
        char *out = NULL, *again = NULL, err[256];
        size_t n = 0, n2 = 0;
        err[0] = '\0';
        int rc = campath_frame_scene(text, size, frames[k], 5, k == 1 ? 64 : 0, 0, &out, &n, err, sizeof(err));
        CHECK_FUZZ(rc == 0 || rc == -1 || rc == -2);
        if (rc == -1)
            CHECK_FUZZ(err[0] != '\0');
        if (rc != 0)
            continue;
        CHECK_FUZZ(out && strlen(out) == n);
        json_t *j = json_loadb(out, n, 0, NULL);
        CHECK_FUZZ(json_is_object(j) && !json_object_get(j, "camera_path") && !json_object_get(j, "camera_interp"));
        json_decref(j);
        CHECK_FUZZ(campath_frame_scene(text, size, frames[k], 5, k == 1 ? 64 : 0, 0, &again, &n2, err, sizeof(err)) == 0);
        CHECK_FUZZ(n == n2 && memcmp(out, again, n) == 0);
        free(out);
        free(again);
    }
    free(text);
    return 0;
}
