# Sourced by the comparison scripts: two network namespaces joined by a veth pair, standing in for two hosts.
#
#   netns_pair_up NS_A NS_B ADDR_A ADDR_B
#
# makes namespaces NS_A and NS_B, a veth pair vNS_A <-> vNS_B with ADDR_A/24 and ADDR_B/24 inside them only, and
# brings up each side's loopback and veth. The caller removes them (`netns_pair_down NS_A NS_B`, e.g. in its EXIT
# trap). Needs root and iproute2.
netns_pair_up() {
    local a=$1 b=$2 addr_a=$3 addr_b=$4
    ip netns add "$a"
    ip netns add "$b"
    ip link add "v$a" type veth peer name "v$b"
    ip link set "v$a" netns "$a"
    ip link set "v$b" netns "$b"
    ip -n "$a" address add "$addr_a/24" dev "v$a"
    ip -n "$b" address add "$addr_b/24" dev "v$b"
    for ns in "$a" "$b"; do ip -n "$ns" link set lo up; ip -n "$ns" link set "v$ns" up; done
}

# Deletes both namespaces (and with them the veth pair); quiet when they do not exist.
netns_pair_down() {
    ip netns delete "$1" 2>/dev/null || true
    ip netns delete "$2" 2>/dev/null || true
}
