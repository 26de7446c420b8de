// Placement of the engine's `nconnect` connections over the server's
// addresses (a round-robin DNS name over floating IPs returns several).
//
// Pure function, so the policy is tested without sockets:
//   - the connections are spread evenly over the usable addresses (each
//     gets the floor or the ceiling of connections / addresses; the
//     addresses that already hold more get the ceilings);
//   - `cap` (0: none) bounds the connections per address, as servers with a
//     per-node connection limit want; connections that fit nowhere get -1
//     and stay unused until an address has room;
//   - a connection keeps its address while that address is usable and
//     within its share, so a change moves as few connections as possible:
//     an address that stops answering loses its connections to the others,
//     and when it returns it takes back its share, nothing more.
//   - with no usable address at all the current placement is kept (the
//     engine goes on trying to reconnect where it was).
//
// Thread-safety: a pure function.
#pragma once

#include <cstddef>
#include <vector>

namespace floatmount::nfs {

// current[i]: the address index connection i uses now (-1: none);
// usable[a]: address a answers and is the same server. Returns the
// address index for each connection.
std::vector<int> PlaceConnections(const std::vector<int>& current, const std::vector<bool>& usable,
                                  size_t cap);

}  // namespace floatmount::nfs
