#include "nfs/v4/connection_pick.h"

namespace floatmount::nfs {

int PickConnection(std::span<const ConnLoad> conns, bool bulk) {
  int best = -1, express = -1, draining = -1, stalled = -1;
  auto less_loaded = [&conns](int i, int than) {
    return than < 0 || conns[i].outstanding < conns[than].outstanding;
  };
  for (int i = 0; i < int(conns.size()); ++i) {
    const ConnLoad& c = conns[i];
    if (!c.usable) continue;
    if (c.stalled) {
      if (less_loaded(i, stalled)) stalled = i;
      continue;
    }
    if (c.draining) {
      if (less_loaded(i, draining)) draining = i;
      continue;
    }
    if (express < 0) {
      express = i;
      if (bulk) continue;  // kept for small calls
    }
    if (less_loaded(i, best)) best = i;
  }
  for (int pick : {best, express, draining}) {
    if (pick >= 0) return pick;
  }
  return stalled;
}

}  // namespace floatmount::nfs
