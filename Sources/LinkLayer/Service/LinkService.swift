/// The owner's side of one link: what its peer may ask for. `DataDist` implements it over its cache table;
/// `ServiceDispatcher` decodes the peer's requests and calls it: one request at a time per link from the
/// connection's reader, but concurrently from the requesters' threads when the peer lives in this process
/// (`DirectRoute`), so every method must be safe to call from several threads at once.
package protocol LinkService: Sendable {
    /// Finds and pins what `request` names, or refuses.
    func resolve(_ request: ResolveRequest) -> Result<Grant, Refusal>
    /// Grants every item of `request` under one pin, or refuses the whole batch.
    func resolveBatch(_ request: BatchResolveRequest) -> Result<Grant, Refusal>
    /// The peer is done with a grant (after a push: the bytes are written). Releases are not answered.
    func release(_ notice: ReleaseNotice)
    /// Whether the peer is expected back soon after a grant under which it copies `bytes` (a short copy): the
    /// connection then keeps polling for the next request instead of sleeping. A long copy would lose a core to
    /// that polling.
    func expectsPromptRequest(copying bytes: UInt64) -> Bool
    /// The refusal for a request that is not one: malformed, or of a kind no established link takes.
    func refusal(forMalformed problem: String) -> Refusal
    /// The refusal for a delivery of granted bytes that failed on the data plane (`problem`).
    func refusal(forFailedDelivery problem: String) -> Refusal
    /// The link closed; every grant it held is void.
    func linkClosed(_ reason: CloseReason)
}
