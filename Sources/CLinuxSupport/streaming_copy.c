// The fake ACL library compiles this file into itself with DATADIST_COPY_API defined as `static`: its large
// device-to-device copies stand in for a device's DMA engine as the emulator's do. Hence self-contained.
#ifndef DATADIST_COPY_API
#include "CLinuxSupport.h"
#define DATADIST_COPY_API
#endif

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <emmintrin.h>

// Copies with non-temporal (streaming) stores: the destination's cache lines are written without being read
// first and without displacing the cache, the way a DMA engine writes. Between buffers that are not in the
// cache this moves each byte over the memory bus twice instead of three times. SSE2 is part of x86-64, so no
// feature check is needed.
DATADIST_COPY_API void datadist_copy_streaming(void *destination, const void *source, size_t count) {
    unsigned char *to = destination;
    const unsigned char *from = source;
    size_t head = (16 - ((uintptr_t)to & 15)) & 15;
    if (head > count) head = count;
    memcpy(to, from, head);
    to += head;
    from += head;
    count -= head;
    size_t body = count & ~(size_t)63;
    for (size_t offset = 0; offset < body; offset += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(from + offset));
        __m128i b = _mm_loadu_si128((const __m128i *)(from + offset + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(from + offset + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(from + offset + 48));
        _mm_stream_si128((__m128i *)(to + offset), a);
        _mm_stream_si128((__m128i *)(to + offset + 16), b);
        _mm_stream_si128((__m128i *)(to + offset + 32), c);
        _mm_stream_si128((__m128i *)(to + offset + 48), d);
    }
    // Streaming stores are weakly ordered: make them visible before anyone is told the copy is done.
    _mm_sfence();
    memcpy(to + body, from + body, count - body);
}

DATADIST_COPY_API int datadist_copy_streaming_available(void) { return 1; }
#else
DATADIST_COPY_API void datadist_copy_streaming(void *destination, const void *source, size_t count) { memcpy(destination, source, count); }

DATADIST_COPY_API int datadist_copy_streaming_available(void) { return 0; }
#endif
