// An EngineTest whose client reaches the server through an RpcFaultProxy
// (tests/harness/rpc_fault_proxy.h), so a test can answer chosen COMPOUNDs
// itself, rewrite replies or hold them back.
#pragma once

#include <memory>

#include "tests/harness/rpc_fault_proxy.h"
#include "tests/integration/engine_fixture.h"

namespace floatmount::testing {

class ProxiedEngineTest : public EngineTest {
 protected:
  void SetUp() override {
    EngineTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    proxy_ = std::make_unique<RpcFaultProxy>(server_address(), server_port());
    ASSERT_TRUE(proxy_->Start()) << proxy_->error();
  }
  void TearDown() override {
    proxy_.reset();
    EngineTest::TearDown();
  }
  // A mount through the proxy.
  std::unique_ptr<nfs::Nfs41Client> Mount(int nconnect) {
    return MountOrFail(Options(nconnect, proxy_->port()));
  }

  std::unique_ptr<RpcFaultProxy> proxy_;
};

}  // namespace floatmount::testing
