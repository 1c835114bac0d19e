#include <string.h>

#include "cs.h"

static const char *const cs_policy_names[] = {
    [CS_POLICY_INTERMEDIATE] = "intermediate",
    [CS_POLICY_MODERN] = "modern",
    [CS_POLICY_COMPAT] = "compat",
};

int cs_policy_parse(const char *name, enum cs_policy *out)
{
    for (size_t i = 0; i < sizeof(cs_policy_names) / sizeof(cs_policy_names[0]); i++) {
        if (strcmp(name, cs_policy_names[i]) == 0) {
            *out = (enum cs_policy)i;
            return 0;
        }
    }
    return -1;
}

const char *cs_policy_name(enum cs_policy p)
{
    if ((size_t)p >= sizeof(cs_policy_names) / sizeof(cs_policy_names[0]))
        return "unknown";
    return cs_policy_names[p];
}
