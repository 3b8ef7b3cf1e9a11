@_exported public import enum DeviceCaps.AtlasProduct
@_exported public import struct DeviceCaps.CapsError
// `import DataDist` gives callers the capability types that its API hands out: `LLMDataDist.caps` returns a
// `DeviceCapabilities` (of an `AtlasProduct`, gating each `Operation`), whose `check` throws `CapsError`. The
// rest of `DeviceCaps` (the support matrix, product classification) is for tools: import `DeviceCaps` for it.
@_exported public import struct DeviceCaps.DeviceCapabilities
@_exported public import enum DeviceCaps.Operation
