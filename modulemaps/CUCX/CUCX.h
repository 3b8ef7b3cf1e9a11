#ifndef DATADIST_CUCX_H
#define DATADIST_CUCX_H
#include <ucp/api/ucp.h>
#include <stdint.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <ucs/debug/log_def.h>

// What Swift cannot import from ucp.h: the status-pointer macros, and setting up the parameter structs of the
// calls DataDist makes (their field masks are enums of UCS_BIT macros).

// UCX prints its log to stdout unless UCX_LOG_FILE names a file, which corrupts a program whose stdout is data
// (`datadist serve --json`). This handler formats each enabled message and hands it to LinkLayer's Swift function
// `datadist_ucx_log_message` (UCXLog.swift, which logs it with swift-log), instead of UCX's own printing.
extern void datadist_ucx_log_message(int level, const char *file, unsigned line, const char *message);

static ucs_log_func_rc_t datadist_ucx_log_handler(const char *file, unsigned line, const char *function,
                                                  ucs_log_level_t level,
                                                  const ucs_log_component_config_t *component,
                                                  const char *format, va_list arguments) {
    (void)function;
    if (!ucs_log_component_is_enabled(level, component) && level != UCS_LOG_LEVEL_PRINT) {
        return UCS_LOG_FUNC_RC_CONTINUE;
    }
    char message[1024];
    vsnprintf(message, sizeof(message), format, arguments);
    datadist_ucx_log_message((int)level, file, line, message);
    return UCS_LOG_FUNC_RC_STOP;
}

static inline void datadist_ucx_forward_log(void) { ucs_log_push_handler(datadist_ucx_log_handler); }

static inline int datadist_ucs_ptr_is_err(const void *ptr) { return UCS_PTR_IS_ERR(ptr) ? 1 : 0; }
static inline int datadist_ucs_ptr_is_ptr(const void *ptr) { return UCS_PTR_IS_PTR(ptr) ? 1 : 0; }
static inline ucs_status_t datadist_ucs_ptr_status(const void *ptr) { return UCS_PTR_STATUS(ptr); }

/// A context for RMA and active messages with a wakeup (the worker's event fd).
static inline ucs_status_t datadist_ucp_init(const ucp_config_t *config, ucp_context_h *context) {
    ucp_params_t params;
    memset(&params, 0, sizeof(params));
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_RMA | UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
    return ucp_init(&params, config, context);
}

static inline ucs_status_t datadist_ucp_worker_create(ucp_context_h context, ucp_worker_h *worker) {
    ucp_worker_params_t params;
    memset(&params, 0, sizeof(params));
    params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    params.thread_mode = UCS_THREAD_MODE_MULTI;
    return ucp_worker_create(context, &params, worker);
}

/// Registers `length` bytes at `address`; remote peers may read them, and write them when `remote_write`.
static inline ucs_status_t datadist_ucp_mem_map(
    ucp_context_h context, void *address, size_t length, int remote_write, ucp_mem_h *memh) {
    ucp_mem_map_params_t params;
    memset(&params, 0, sizeof(params));
    params.field_mask = UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UCP_MEM_MAP_PARAM_FIELD_LENGTH
        | UCP_MEM_MAP_PARAM_FIELD_PROT;
    params.address = address;
    params.length = length;
    params.prot = UCP_MEM_MAP_PROT_LOCAL_READ | UCP_MEM_MAP_PROT_LOCAL_WRITE | UCP_MEM_MAP_PROT_REMOTE_READ
        | (remote_write ? UCP_MEM_MAP_PROT_REMOTE_WRITE : 0);
    return ucp_mem_map(context, &params, memh);
}

/// An endpoint to the worker at `address` whose failure (the peer died, the network went) calls `handler`.
static inline ucs_status_t datadist_ucp_ep_create(
    ucp_worker_h worker, const ucp_address_t *address, ucp_err_handler_cb_t handler, void *arg, ucp_ep_h *ep) {
    ucp_ep_params_t params;
    memset(&params, 0, sizeof(params));
    params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE
        | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    params.address = address;
    params.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    params.err_handler.cb = handler;
    params.err_handler.arg = arg;
    return ucp_ep_create(worker, &params, ep);
}

/// Starts a one-sided read (`write` 0) or write of `length` bytes between `local` and `remote`; NULL when it
/// completed at once, else a request or an error pointer.
static inline ucs_status_ptr_t datadist_ucp_rma(
    ucp_ep_h ep, int write, void *local, size_t length, uint64_t remote, ucp_rkey_h rkey) {
    ucp_request_param_t params;
    memset(&params, 0, sizeof(params));
    return write ? ucp_put_nbx(ep, local, length, remote, rkey, &params)
                 : ucp_get_nbx(ep, local, length, remote, rkey, &params);
}

/// Has `callback` receive the active messages `id` that arrive at `worker`.
static inline ucs_status_t datadist_ucp_set_am_handler(
    ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t callback, void *arg) {
    ucp_am_handler_param_t params;
    memset(&params, 0, sizeof(params));
    params.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB
        | UCP_AM_HANDLER_PARAM_FIELD_ARG;
    params.id = id;
    params.cb = callback;
    params.arg = arg;
    return ucp_worker_set_am_recv_handler(worker, &params);
}

/// Whether an active message arrived as a rendezvous announcement (its data not yet sent).
static inline int datadist_ucp_am_is_rndv(const ucp_am_recv_param_t *param) {
    return (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) ? 1 : 0;
}

/// Sends active message `id` with `header` and `length` bytes at `buffer`, eagerly: a rendezvous would have the
/// receiver answer (UCX 1.13 aborts a process whose answer to a peer that just failed cannot be sent), an
/// eager message is never answered. NULL when it completed at once, else a request or an error pointer.
static inline ucs_status_ptr_t datadist_ucp_am_send(
    ucp_ep_h ep, unsigned id, const void *header, size_t header_length, const void *buffer, size_t length) {
    ucp_request_param_t params;
    memset(&params, 0, sizeof(params));
    params.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    params.flags = UCP_AM_SEND_FLAG_EAGER;
    return ucp_am_send_nbx(ep, id, header, header_length, buffer, length, &params);
}

static inline ucs_status_ptr_t datadist_ucp_ep_flush(ucp_ep_h ep) {
    ucp_request_param_t params;
    memset(&params, 0, sizeof(params));
    return ucp_ep_flush_nbx(ep, &params);
}

/// Closes `ep`: `force` without waiting for the peer (it failed, or a transfer timed out).
static inline ucs_status_ptr_t datadist_ucp_ep_close(ucp_ep_h ep, int force) {
    ucp_request_param_t params;
    memset(&params, 0, sizeof(params));
    params.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    params.flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0;
    return ucp_ep_close_nbx(ep, &params);
}

#endif
