#ifndef DATADIST_CHWLOC_H
#define DATADIST_CHWLOC_H
#include <hwloc.h>
#endif
