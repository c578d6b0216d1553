/*
 * LD_PRELOAD helper for the sanitizer stage of tools/test.sh (not linked
 * into anything we ship).
 *
 * Mesa's lavapipe keeps a few process-lifetime allocations in its own
 * globals. The Vulkan loader dlcloses the driver at vkDestroyInstance, so
 * those blocks lose their last reference and LeakSanitizer reports them,
 * from frames it can no longer name ("<unknown module>"): a suppressions file
 * cannot match them. This makes dlclose a no-op for every library except the
 * Vulkan loader itself (which our own code opens and closes), so drivers and
 * layers stay mapped until exit: their globals stay reachable and any real
 * leak keeps a stack LeakSanitizer can symbolize. Our own allocations are
 * checked exactly as before.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <string.h>

int dlclose(void *handle)
{
    struct link_map *map = NULL;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && !strstr(map->l_name, "libvulkan.so"))
        return 0;
    int (*real_dlclose)(void *) = NULL;
    void *sym = dlsym(RTLD_NEXT, "dlclose");
    memcpy(&real_dlclose, &sym, sizeof sym);
    return real_dlclose ? real_dlclose(handle) : 0;
}
