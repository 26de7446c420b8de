// RpcNullPing: proves that an ONC RPC server (RFC 5531) is up by sending one
// NULL procedure call over TCP with record marking and checking the reply.
//
// Written by hand (44 bytes out, 28 bytes back) so the harness does not
// depend on the client code it tests. Used by GaneshaServer::Start() and by
// tests that check a FaultProxy path end to end.
//
// Thread-safety: a free function without shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace floatmount::testing {

inline constexpr uint32_t kNfsProgram = 100003;

// Connects to address:port, calls procedure 0 of (program, version) with
// AUTH_NONE, and returns true if the server replied MSG_ACCEPTED/SUCCESS
// within `timeout` (which bounds the connect, send and receive together).
// On failure returns false and, if `error` is not null, says why.
bool RpcNullPing(const std::string& address, uint16_t port, uint32_t program, uint32_t version,
                 std::chrono::milliseconds timeout, std::string* error = nullptr);

}  // namespace floatmount::testing
