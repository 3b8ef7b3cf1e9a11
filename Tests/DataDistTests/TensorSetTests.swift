import Testing

@testable import DataDist

/// `TensorSet` (the tensors a layer-wise pull took) behaves as a `Set<Int>` of the same indices, below, across and
/// above its 64 inline bits.
@Suite struct TensorSetTests {
    @Test func matchesASetOfTheSameIndices() {
        var generator = SystemRandomNumberGenerator()
        let bounds = [0, 1, 2, 31, 63, 64, 65, 100, 127, 128, 130]
        var set = TensorSet()
        var model = Set<Int>()
        for _ in 0..<2000 {
            let a = bounds.randomElement(using: &generator)!
            let b = bounds.randomElement(using: &generator)!
            let range = min(a, b)..<max(a, b)
            let other = TensorSet(range)
            #expect(other.count == range.count)
            #expect(other.isEmpty == range.isEmpty)
            let taken = other.subtracting(set)
            #expect(modelOf(taken) == Set(range).subtracting(model))
            switch Int.random(in: 0..<3, using: &generator) {
            case 0:
                set.formUnion(other)
                model.formUnion(range)
            case 1:
                set.subtract(other)
                model.subtract(range)
            default:
                set = taken
                model = Set(range).subtracting(model)
            }
            #expect(set.count == model.count)
            #expect(modelOf(set) == model)
        }
    }

    @Test func wholeRangesOfTheInlineBits() {
        #expect(TensorSet(0..<64).count == 64)
        #expect(TensorSet(63..<64).contains(63))
        #expect(!TensorSet(0..<63).contains(63))
        #expect(TensorSet(0..<64).subtracting(TensorSet(0..<64)).isEmpty)
        #expect(TensorSet(60..<70).count == 10)
        #expect(TensorSet(-3..<2).count == 2)
    }

    private func modelOf(_ set: TensorSet) -> Set<Int> { Set((0..<140).filter(set.contains)) }
}
