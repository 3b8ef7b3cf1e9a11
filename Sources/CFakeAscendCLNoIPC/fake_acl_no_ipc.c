// The fake ACL runtime without the five IPC entry points (aclrtIpcMem*, aclrtDeviceGetBareTgid), as a CANN before
// 8.3: a library on which device sharing is not available. Same source as CFakeAscendCL, its own shared object.
#define FAKE_ACL_OMIT_IPC 1
#include "../CFakeAscendCL/fake_acl.c"
