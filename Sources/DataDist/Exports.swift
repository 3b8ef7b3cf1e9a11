// `import DataDist` gives callers the capability types (`DeviceCapabilities`, `AtlasProduct`, `Operation`) that
// `LLMDataDist.caps` returns.
@_exported public import DeviceCaps
