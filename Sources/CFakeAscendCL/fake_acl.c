#include "CFakeAscendCL.h"
