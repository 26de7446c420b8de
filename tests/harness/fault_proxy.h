// FaultProxy: an in-process TCP proxy that puts a bad network between the
// client under test and a server: added latency, a bandwidth cap, cut
// connections, a black hole (a floating IP that stops answering) and an
// address that refuses connections. There is no netem or iptables here, so
// this is how fault and latency tests shape traffic.
//
// Data path. Each accepted connection gets one upstream connection and two
// directions (client->target, target->client). Each direction is a delay
// line run by two threads: a reader that recv()s up to 256 KiB at a time and
// stamps each chunk with when it is due (arrival + half the added RTT), and a
// writer that send()s chunks once due. So added latency does not cap
// throughput: up to 8 MiB per direction can be in flight in the line. At
// zero latency the writer sends as soon as the reader hands over; buffers
// are recycled, sockets are non-blocking and threads sleep in poll() or on a
// condition variable, never in a timed polling loop.
//
// Threads: one accept thread, plus per connection a runner (connects
// upstream, then reads client->target) and three helpers (the other reader
// and both writers). The control methods may be called from any thread
// while traffic flows. Stop() (and the destructor) abort every connection
// and join all threads.
//
// Faults:
//   SetLatency   applies to data read after the call.
//   SetJitter    each chunk read after the call waits up to this much more
//                (uniform), never passing the chunk ahead of it on its
//                connection: replies on different connections arrive in
//                another order than the server sent them, as on a network
//                with several paths.
//   SetBandwidth token bucket per direction per connection (burst: 10 ms of
//                the rate, at least 16 KiB); changes apply at once.
//   CutAll       every current connection is reset (SO_LINGER 0, RST) on
//                both sides; returns once they are closed. Accepting goes on.
//   SetBlackHole while on, nothing is forwarded on any connection, and new
//                connections are accepted but not connected upstream; when it
//                goes off, forwarding resumes and those connect upstream (as
//                if a partition healed). Use CutAll to drop them instead.
//   SetTarget    new connections go to another server (a floating IP moved
//                to another node); current ones stay where they are, so
//                CutAll after it moves everything.
//   Pause        new connections are accepted and reset at once (address
//                down); existing ones are untouched. Resume undoes it.
// A reset or error on one side of a connection resets the other side; a
// clean EOF is passed on as a half-close (shutdown SHUT_WR).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace floatmount::testing {

class FaultProxy {
 public:
  // Listens on listen_address:listen_port (0 = pick a free port) and forwards
  // to target_host:target_port. Nothing happens until Start().
  FaultProxy(std::string listen_address, uint16_t listen_port, std::string target_host,
             uint16_t target_port);
  ~FaultProxy();  // Stop()
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // Resolves the target, binds, listens and starts accepting. Returns false
  // with error() set on failure. Call once.
  bool Start();
  // Aborts all connections, stops accepting and joins every thread.
  // Idempotent.
  void Stop();

  const std::string& error() const { return error_; }
  const std::string& address() const { return listen_address_; }
  uint16_t port() const { return port_; }  // the bound port, after Start()

  void SetLatency(std::chrono::microseconds added_rtt);
  void SetJitter(std::chrono::microseconds max);
  std::chrono::microseconds latency() const;
  void SetBandwidth(uint64_t bytes_per_sec);  // 0 = unlimited
  void CutAll();
  // False (error() set) if `host` does not resolve; the target is unchanged.
  bool SetTarget(const std::string& host, uint16_t port);
  void SetBlackHole(bool on);
  bool black_hole() const;
  void Pause();
  void Resume();

  int ActiveConnections() const;     // accepted and not yet closed
  uint64_t TotalAccepted() const;    // excludes those refused while paused
  uint64_t TotalRefused() const;     // reset at once while paused
  uint64_t BytesToTarget() const;    // forwarded client -> target
  uint64_t BytesFromTarget() const;  // forwarded target -> client

 private:
  class Connection;
  struct Shared;

  void AcceptLoop();
  void PokeAll();  // wake connections after a control changed
  void Reap();     // drop closed connections

  const std::string listen_address_;
  const uint16_t requested_port_;
  const std::string target_host_;
  const uint16_t target_port_;
  std::string error_;  // set by Start() and SetTarget() only
  uint16_t port_ = 0;  // constant after Start()
  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd; readable once Stop() begins
  const std::unique_ptr<Shared> shared_;
  std::thread accept_thread_;

  mutable std::mutex mutex_;
  bool stopped_ = false;                                // guarded by mutex_
  std::list<std::shared_ptr<Connection>> connections_;  // guarded by mutex_
};

}  // namespace floatmount::testing
