#ifndef DATADIST_CNUMA_H
#define DATADIST_CNUMA_H
#include <numa.h>
#include <numaif.h>
#endif
