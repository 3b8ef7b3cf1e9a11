public import Foundation

/// Where a test finds what the build produced and what the repository holds.
public enum TestPaths {
    /// The folder holding the running test binary, where SwiftPM also puts the package's executables and
    /// dynamic libraries.
    public static var builtProducts: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    /// The package root (the folder holding `Package.swift`), found from this file's path.
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }
}
