// The one knfsd guest of a test process, shared by every fixture that runs
// against knfsd (FLOATMOUNT_TEST_SERVER=knfsd): the FUSE-level MountTest
// (mount_fixture.h) and the engine-level EngineTest (engine_fixture.h).
//
// A guest boot costs ~10 s or more under QEMU without KVM, so the first
// SetUp that asks boots it and every later test of the process reuses it;
// each test starts by emptying its export (EmptyGuestExport). The guest is
// stopped when the process exits, and dies with it (QEMU has
// PR_SET_PDEATHSIG).
//
// Thread-safety: called from the tests' main thread only.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "tests/harness/knfsd_server.h"

namespace floatmount::testing {

// True if FLOATMOUNT_TEST_SERVER=knfsd: the suites that support it use the
// kernel server in the shared QEMU guest instead of ganesha.
bool KnfsdRequested();

// The process's knfsd guest, booted on the first call. Null with *error set
// if it cannot be had (prerequisite missing, boot failed, guest died); a
// failed boot is not retried.
KnfsdServer* SharedKnfsd(std::string* error);

// Leaves the guest's export empty, world-writable and owned by root, as a
// fresh ganesha export is, for the next test.
::testing::AssertionResult EmptyGuestExport(KnfsdServer& server);

}  // namespace floatmount::testing
