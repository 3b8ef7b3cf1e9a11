// The thread-local message of the C ABI's last failed call, and the string release of datadist.h. The Swift side
// (Sources/DataDistC) sets the message; a thread's copy is freed when the thread exits.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "datadist/datadist.h"
#include "datadist_support.h"

static pthread_key_t message_key;
static pthread_once_t message_once = PTHREAD_ONCE_INIT;

static void make_key(void) { (void)pthread_key_create(&message_key, free); }

void datadist_support_set_last_error(const char *message, size_t length) {
    (void)pthread_once(&message_once, make_key);
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, message, length);
        copy[length] = '\0';
    }
    free(pthread_getspecific(message_key));
    (void)pthread_setspecific(message_key, copy);
}

const char *datadist_last_error(void) {
    (void)pthread_once(&message_once, make_key);
    const char *message = pthread_getspecific(message_key);
    return message != NULL ? message : "";
}

char *datadist_support_copy_string(const char *text, size_t length) {
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, text, length);
        copy[length] = '\0';
    }
    return copy;
}

void datadist_free_string(char *string) { free(string); }
