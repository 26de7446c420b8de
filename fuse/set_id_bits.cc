// See set_id_bits.h.
#include "fuse/set_id_bits.h"

#include <sys/stat.h>

namespace floatmount::fuse {

bool OnlyClearsSetIdBits(uint32_t current, uint32_t requested) {
  constexpr uint32_t kSetId = S_ISUID | S_ISGID;
  current &= 07777;
  requested &= 07777;
  if (requested == current) return false;
  const uint32_t cleared = current & ~requested;
  const uint32_t added = requested & ~current;
  return added == 0 && (cleared & ~kSetId) == 0;
}

bool IsSetIdKillTheServerRefuses(const nfs::Credentials& caller, const nfs::Attributes& file,
                                 uint32_t requested) {
  if (caller.uid == 0 || !file.Has(nfs::Attributes::kMode) || !file.Has(nfs::Attributes::kUid)) {
    return false;
  }
  return caller.uid != file.uid && OnlyClearsSetIdBits(file.mode, requested);
}

}  // namespace floatmount::fuse
