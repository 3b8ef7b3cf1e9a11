#ifndef DATADIST_CUCX_TRANSPORTS_H
#define DATADIST_CUCX_TRANSPORTS_H
#include <uct/api/uct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The transports UCX has on this host, found the way `ucx_info -d` finds them: every transport resource of every
// memory domain of every UCT component. Writes "transport/device" lines into `buffer` (truncated at `capacity`,
// always terminated) and returns how many it found; on a failure of the component query returns -1 with the
// status in `*status`. A memory domain that does not open (no such hardware) is skipped.
static inline int datadist_uct_list_transports(char *buffer, size_t capacity, ucs_status_t *status) {
    uct_component_h *components = NULL;
    unsigned component_count = 0;
    *status = uct_query_components(&components, &component_count);
    if (*status != UCS_OK) return -1;
    size_t used = 0;
    int found = 0;
    if (capacity > 0) buffer[0] = '\0';
    for (unsigned c = 0; c < component_count; c++) {
        uct_component_attr_t attributes;
        memset(&attributes, 0, sizeof attributes);
        attributes.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCE_COUNT;
        if (uct_component_query(components[c], &attributes) != UCS_OK || attributes.md_resource_count == 0) continue;
        uct_md_resource_desc_t *domains = calloc(attributes.md_resource_count, sizeof *domains);
        if (domains == NULL) continue;
        attributes.field_mask = UCT_COMPONENT_ATTR_FIELD_MD_RESOURCES;
        attributes.md_resources = domains;
        if (uct_component_query(components[c], &attributes) == UCS_OK) {
            for (unsigned d = 0; d < attributes.md_resource_count; d++) {
                uct_md_config_t *config = NULL;
                if (uct_md_config_read(components[c], NULL, NULL, &config) != UCS_OK) continue;
                uct_md_h domain = NULL;
                ucs_status_t opened = uct_md_open(components[c], domains[d].md_name, config, &domain);
                uct_config_release(config);
                if (opened != UCS_OK) continue;
                uct_tl_resource_desc_t *resources = NULL;
                unsigned resource_count = 0;
                if (uct_md_query_tl_resources(domain, &resources, &resource_count) == UCS_OK) {
                    for (unsigned t = 0; t < resource_count; t++) {
                        found++;
                        if (used < capacity) {
                            int n = snprintf(buffer + used, capacity - used, "%s/%s\n", resources[t].tl_name,
                                             resources[t].dev_name);
                            if (n > 0) used = used + (size_t)n < capacity ? used + (size_t)n : capacity;
                        }
                    }
                    uct_release_tl_resource_list(resources);
                }
                uct_md_close(domain);
            }
        }
        free(domains);
    }
    uct_release_component_list(components);
    return found;
}
#endif
