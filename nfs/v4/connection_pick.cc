#include "nfs/v4/connection_pick.h"

namespace floatmount::nfs {

int PickConnection(std::span<const ConnLoad> conns, bool bulk) {
  int best = -1, draining = -1, express = -1;
  for (int i = 0; i < int(conns.size()); ++i) {
    const ConnLoad& c = conns[i];
    if (!c.usable) continue;
    if (c.draining) {
      if (draining < 0 || c.outstanding < conns[draining].outstanding) draining = i;
      continue;
    }
    if (express < 0) {
      express = i;
      if (bulk) continue;  // kept for small calls
    }
    if (best < 0 || c.outstanding < conns[best].outstanding) best = i;
  }
  if (best >= 0) return best;
  return express >= 0 ? express : draining;
}

}  // namespace floatmount::nfs
