// SlotTable: the fore-channel slots of one NFSv4.1 session
// (RFC 8881 section 2.10.6.1).
//
// Each request holds one slot from before it is sent until its SEQUENCE
// result is known. A slot's sequence id advances only when the server has
// processed a request on it (SEQUENCE succeeded); a resend after a lost
// connection reuses the same slot and sequence id, so the server's reply
// cache answers a request it already executed.
//
// The usable range follows the server: slots above min(sr_highest_slotid,
// sr_target_highest_slotid) are not handed out again once released.
//
// Bulk calls (WRITEs) leave the last few slots to small ones, and a freed
// slot goes to a waiting small call first: 64 WRITEs of 32 writers must not
// make another user's GETATTR wait for the slot table (issue 14). Within
// each kind, waiters are served in order.
//
// Threads: Acquire from any thread; Complete/Release from the receiver
// threads. A Grant runs without the table's lock held: on the thread that
// called Acquire when a slot is free, else on the thread that frees one.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

namespace floatmount::nfs {

class SlotTable {
 public:
  // slot, its sequence id to send, and the sa_highest_slotid to send.
  using Grant = std::function<void(uint32_t slot, uint32_t seqid, uint32_t highest_slotid)>;

  // `slots` is ca_maxrequests as granted by CREATE_SESSION.
  explicit SlotTable(uint32_t slots);

  // Runs `grant` now if a slot is free, otherwise when one is freed (FIFO
  // per kind). A bulk call takes a slot only while more than
  // `small_reserve()` are free.
  void Acquire(Grant grant, bool bulk = false);
  // The server processed the request on `slot` (SEQUENCE returned OK):
  // advance its sequence id, apply the server's limits, free it.
  void Complete(uint32_t slot, uint32_t server_highest, uint32_t target_highest);
  // The server did not process the request (a SEQUENCE error, an RPC-level
  // rejection): free the slot with its sequence id unchanged.
  void Release(uint32_t slot);
  // The last request on `slot` was given up before its reply (a soft
  // timeout, RFC 8881 2.10.6.2): the server may or may not have run it, so
  // the slot's sequence id is unknown. The slot is not handed out until it
  // has been resynchronised with a lone SEQUENCE (TakeInterrupted).
  void Interrupt(uint32_t slot);
  // Claims an interrupted slot for that SEQUENCE and returns the sequence
  // id to try: the one after the interrupted request's, right if the
  // server ran it. If the server answers SEQ_MISORDERED it did not: StepBack
  // returns the interrupted request's own id to send instead. Either way
  // the SEQUENCE that succeeds Completes the slot, whose sequence id is
  // then known again; a late copy of the interrupted request finds the
  // slot moved on (a replay or a misordered id) and is not run twice.
  bool TakeInterrupted(uint32_t* slot, uint32_t* seqid);
  uint32_t StepBack(uint32_t slot);
  uint32_t interrupted() const;  // slots waiting for a resynchronisation
  // The server answered BADSLOT for `slot`: it has fewer slots than the
  // session said. Frees the slot; slots from `slot` up are not handed out
  // again in this session, whatever later replies say.
  void Refuse(uint32_t slot);
  // Waiters not yet granted (for shutdown or a session that died).
  std::deque<Grant> TakeWaiters();

  uint32_t size() const { return static_cast<uint32_t>(seqids_.size()); }
  uint32_t limit() const;  // how many slots may be in use now
  uint32_t in_use() const;
  uint32_t small_reserve() const;  // min(4, limit / 4)

 private:
  // Picks a free slot at or below the limit; -1 if none. Requires mu_.
  int FindFreeSlot() const;
  uint32_t HighestBusy() const;
  bool BulkMayTakeLocked() const;
  // Frees `slot` and returns the next waiter to grant, if any. Requires mu_.
  bool NextGrant(Grant* grant, uint32_t* slot, uint32_t* seqid, uint32_t* highest);

  mutable std::mutex mu_;
  std::vector<uint32_t> seqids_;  // GUARDED_BY(mu_): next sequence id per slot
  std::vector<uint8_t> busy_;     // GUARDED_BY(mu_): 0 free, 1 busy, 2 interrupted
  uint32_t limit_;                // GUARDED_BY(mu_): highest usable slot id + 1
  uint32_t ceiling_;              // GUARDED_BY(mu_): lowest slot refused (BADSLOT)
  std::deque<Grant> waiters_;       // GUARDED_BY(mu_): small calls
  std::deque<Grant> bulk_waiters_;  // GUARDED_BY(mu_)
};

}  // namespace floatmount::nfs
