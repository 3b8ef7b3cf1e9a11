// libFakeAscendCLNoIPC.so exports what libFakeAscendCL.so does except aclrtIpcMemGetExportKey,
// aclrtIpcMemSetImportPid, aclrtIpcMemImportByKey, aclrtIpcMemClose and aclrtDeviceGetBareTgid; see CFakeAscendCL.h.
#ifndef DATADIST_CFAKEASCENDCLNOIPC_H
#define DATADIST_CFAKEASCENDCLNOIPC_H
#endif
