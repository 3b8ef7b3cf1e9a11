#ifndef DATADIST_CFAKEASCENDCL_H
#define DATADIST_CFAKEASCENDCL_H
#include <stdint.h>
#endif
