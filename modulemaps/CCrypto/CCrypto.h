#ifndef DATADIST_CCRYPTO_H
#define DATADIST_CCRYPTO_H
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
/* getrandom(2): the nonces come from the kernel; the Glibc module does not export it. */
#include <sys/random.h>
#endif
