#include "nfs/placement.h"

#include <algorithm>

namespace floatmount::nfs {

std::vector<int> PlaceConnections(const std::vector<int>& current, const std::vector<bool>& usable,
                                  size_t cap) {
  const size_t n = current.size();
  std::vector<int> addresses;
  for (size_t a = 0; a < usable.size(); ++a) {
    if (usable[a]) addresses.push_back(int(a));
  }
  if (addresses.empty()) return current;
  auto is_usable = [&](int a) { return a >= 0 && size_t(a) < usable.size() && usable[size_t(a)]; };

  // Shares: floor(n / k) each, the remainder to the addresses holding the
  // most connections now (fewest moves), ties to the lower index.
  std::vector<size_t> holding(usable.size(), 0);
  for (int a : current) {
    if (is_usable(a)) ++holding[size_t(a)];
  }
  std::vector<size_t> share(usable.size(), 0);
  const size_t k = addresses.size();
  for (int a : addresses) share[size_t(a)] = n / k;
  std::vector<int> by_holding = addresses;
  std::stable_sort(by_holding.begin(), by_holding.end(),
                   [&](int x, int y) { return holding[size_t(x)] > holding[size_t(y)]; });
  for (size_t i = 0; i < n % k; ++i) ++share[size_t(by_holding[i])];
  if (cap > 0) {
    for (int a : addresses) share[size_t(a)] = std::min(share[size_t(a)], cap);
    // Room left under the cap goes to connections a full share left out.
    size_t placed = 0;
    for (int a : addresses) placed += share[size_t(a)];
    for (int a : addresses) {
      while (placed < n && share[size_t(a)] < cap) {
        ++share[size_t(a)];
        ++placed;
      }
    }
  }

  std::vector<int> out(n, -1);
  std::vector<size_t> used(usable.size(), 0);
  for (size_t i = 0; i < n; ++i) {  // keep what may stay
    const int a = current[i];
    if (is_usable(a) && used[size_t(a)] < share[size_t(a)]) {
      out[i] = a;
      ++used[size_t(a)];
    }
  }
  for (size_t i = 0; i < n; ++i) {  // move the rest where there is most room
    if (out[i] != -1) continue;
    int best = -1;
    for (int a : addresses) {
      const size_t room = share[size_t(a)] - used[size_t(a)];
      if (room > 0 && (best < 0 || room > share[size_t(best)] - used[size_t(best)])) best = a;
    }
    if (best < 0) continue;
    out[i] = best;
    ++used[size_t(best)];
  }
  return out;
}

}  // namespace floatmount::nfs
