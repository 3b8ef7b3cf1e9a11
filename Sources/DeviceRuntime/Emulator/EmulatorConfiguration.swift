import DeviceCaps

/// The emulator's settings, read from an environment dictionary.
struct EmulatorConfiguration: Sendable, Hashable {
    static let devicesVariable = "DATADIST_EMULATE_DEVICES"
    static let memoryVariable = "DATADIST_EMULATE_DEVICE_MEMORY"
    static let productVariable = "DATADIST_PRODUCT"
    static let emulatedProductVariable = "DATADIST_EMULATE_PRODUCT"

    static let defaultDevices = 8
    static let maximumDevices = 64
    static let defaultCapacity = 64 << 30
    static let defaultProduct = AtlasProduct.atlas800IA2

    let deviceCount: Int
    /// Bytes each device can hold.
    let capacity: Int
    let product: AtlasProduct

    init(environment: [String: String]) throws(DeviceError) {
        deviceCount = try Self.deviceCount(environment[Self.devicesVariable])
        capacity = try Self.capacity(environment[Self.memoryVariable])
        product = try Self.product(environment)
    }

    static func deviceCount(_ text: String?) throws(DeviceError) -> Int {
        guard let text else { return defaultDevices }
        guard let count = Int(text.trimmingSpaces), (1...maximumDevices).contains(count) else {
            throw DeviceError(
                .unavailable, "\(devicesVariable)=\"\(text)\" is not a device count in 1...\(maximumDevices)")
        }
        return count
    }

    static func capacity(_ text: String?) throws(DeviceError) -> Int {
        guard let text else { return defaultCapacity }
        guard let count = ByteCount(text), count.bytes > 0 else {
            throw DeviceError(
                .unavailable, "\(memoryVariable)=\"\(text)\" is not a positive byte size (\(ByteCount.grammar))")
        }
        return count.bytes
    }

    /// `DATADIST_PRODUCT` wins over `DATADIST_EMULATE_PRODUCT`; both take an `AtlasProduct` raw value.
    static func product(_ environment: [String: String]) throws(DeviceError) -> AtlasProduct {
        for variable in [productVariable, emulatedProductVariable] {
            guard let text = environment[variable] else { continue }
            guard let product = AtlasProduct(rawValue: text) else {
                let valid = AtlasProduct.allCases.map(\.rawValue).joined(separator: ", ")
                throw DeviceError(.unavailable, "\(variable)=\"\(text)\" is not a product id; valid ids: \(valid)")
            }
            return product
        }
        return defaultProduct
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
