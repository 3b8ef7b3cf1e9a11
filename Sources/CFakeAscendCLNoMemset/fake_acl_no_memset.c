// The fake ACL runtime without aclrtMemset: a library that lacks one required symbol, for the loader's
// refusal path. Same source as CFakeAscendCL, built into its own shared object.
#define FAKE_ACL_OMIT_MEMSET 1
#include "../CFakeAscendCL/fake_acl.c"
