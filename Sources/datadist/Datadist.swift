import ArgumentParser

/// The `datadist` command: inspects the device runtime and the product support of this host, and serves, pulls
/// and demonstrates KV-cache transfers between processes.
@main
struct Datadist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datadist",
        abstract: "DataDist: KV-cache management for disaggregated LLM inference on Ascend (Atlas).",
        discussion: """
            The backend is chosen by DATADIST_BACKEND (auto, acl, emulator); see README.md for every \
            environment variable.
            """,
        subcommands: [
            ProbeCommand.self, MatrixCommand.self, ServeCommand.self, PullCommand.self, DemoCommand.self,
            BenchCommand.self,
            BenchServeCommand.self, BenchEchoCommand.self, BenchPullCommand.self,
        ])
}
