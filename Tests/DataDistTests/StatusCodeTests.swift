import DataDist
import Testing

/// The status codes keep the reference's numbers (`llm_error_codes.h`: 0x5010B000 + n) and names.
@Suite struct StatusCodeTests {
    @Test func everyCodeHasTheReferencesValue() {
        let expected: [(LLMStatusCode, UInt32, String)] = [
            (.success, 0, "LLM_SUCCESS"), (.failed, 0xFFFF_FFFF, "LLM_FAILED"),
            (.waitProcessTimeout, 0x5010_B001, "LLM_WAIT_PROCESS_TIMEOUT"),
            (.kvCacheNotExist, 0x5010_B002, "LLM_KV_CACHE_NOT_EXIST"),
            (.repeatRequest, 0x5010_B003, "LLM_REPEAT_REQUEST"),
            (.requestAlreadyCompleted, 0x5010_B004, "LLM_REQUEST_ALREADY_COMPLETED"),
            (.paramInvalid, 0x5010_B005, "LLM_PARAM_INVALID"), (.engineFinalized, 0x5010_B006, "LLM_ENGINE_FINALIZED"),
            (.notYetLink, 0x5010_B007, "LLM_NOT_YET_LINK"), (.alreadyLink, 0x5010_B008, "LLM_ALREADY_LINK"),
            (.linkFailed, 0x5010_B009, "LLM_LINK_FAILED"), (.unlinkFailed, 0x5010_B00A, "LLM_UNLINK_FAILED"),
            (.notifyPromptUnlinkFailed, 0x5010_B00B, "LLM_NOTIFY_PROMPT_UNLINK_FAILED"),
            (.clusterNumExceedLimit, 0x5010_B00C, "LLM_CLUSTER_NUM_EXCEED_LIMIT"),
            (.processingLink, 0x5010_B00D, "LLM_PROCESSING_LINK"),
            (.deviceOutOfMemory, 0x5010_B00E, "LLM_DEVICE_OUT_OF_MEMORY"),
            (.prefixAlreadyExist, 0x5010_B00F, "LLM_PREFIX_ALREADY_EXIST"),
            (.prefixNotExist, 0x5010_B010, "LLM_PREFIX_NOT_EXIST"),
            (.seqLenOverLimit, 0x5010_B011, "LLM_SEQ_LEN_OVER_LIMIT"), (.noFreeBlock, 0x5010_B012, "LLM_NO_FREE_BLOCK"),
            (.blocksOutOfMemory, 0x5010_B013, "LLM_BLOCKS_OUT_OF_MEMORY"),
            (.cacheIncompatible, 0x5010_B014, "LLM_CACHE_INCOMPATIBLE"),
            (.cacheKeyAlreadyExist, 0x5010_B015, "LLM_CACHE_KEY_ALREADY_EXIST"),
            (.copyCacheFailed, 0x5010_B016, "LLM_COPY_CACHE_FAILED"),
            (.cacheIDAlreadyExist, 0x5010_B017, "LLM_CACHE_ID_ALREADY_EXIST"),
            (.existLink, 0x5010_B018, "LLM_EXIST_LINK"),
            (.featureNotEnabled, 0x5010_B019, "LLM_FEATURE_NOT_ENABLED"), (.timeout, 0x5010_B01A, "LLM_TIMEOUT"),
            (.linkBusy, 0x5010_B01B, "LLM_LINK_BUSY"), (.outOfMemory, 0x5010_B01C, "LLM_OUT_OF_MEMORY"),
            (.deviceMemError, 507_053, "LLM_DEVICE_MEM_ERROR"),
            (.suspectRemoteError, 507_057, "LLM_SUSPECT_REMOTE_ERROR"),
        ]
        for (code, value, name) in expected {
            #expect(code.rawValue == value, "\(name)")
            #expect(code.name == name)
        }
        #expect(Set(LLMStatusCode.allKnown) == Set(expected.map(\.0)))
        #expect(LLMStatusCode(rawValue: 0x5010_B0FF).name == "LLM_FAILED", "unknown codes read as LLM_FAILED")
        #expect(LLMError(.timeout, "x").description == "LLM_TIMEOUT: x")
    }
}
