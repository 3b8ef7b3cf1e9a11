// libFakeAscendCLNoMemset.so exports what libFakeAscendCL.so does except aclrtMemset; see CFakeAscendCL.h.
#ifndef DATADIST_CFAKEASCENDCLNOMEMSET_H
#define DATADIST_CFAKEASCENDCLNOMEMSET_H
#endif
