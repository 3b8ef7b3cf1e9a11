/// Block pairs, in order, merged into runs where both sides advance by one: each run is one copy.
func consecutiveRuns(_ pairs: [(Int, Int)]) -> [(source: Int, destination: Int, count: Int)] {
    var runs: [(source: Int, destination: Int, count: Int)] = []
    runs.reserveCapacity(pairs.count)
    for (source, destination) in pairs {
        if let last = runs.last, last.source + last.count == source, last.destination + last.count == destination {
            runs[runs.count - 1].count += 1
        } else {
            runs.append((source, destination, 1))
        }
    }
    return runs
}
