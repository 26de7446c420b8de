#include "nfs/v3/mount.h"

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <functional>

#include "nfs/v3/convert.h"

namespace floatmount::nfs::v3 {
namespace {

using Clock = std::chrono::steady_clock;

// One step of a synchronous exchange: set by the libnfs callback.
struct Step {
  bool done = false;
  int status = RPC_STATUS_ERROR;
  std::string error;
  std::function<void(void*)> on_success;  // reads the reply while it is valid
};

void OnStep(rpc_context*, int status, void* data, void* private_data) {
  auto* step = static_cast<Step*>(private_data);
  step->done = true;
  step->status = status;
  if (status == RPC_STATUS_SUCCESS) {
    if (step->on_success) step->on_success(data);
  } else {
    step->error = data != nullptr ? static_cast<const char*>(data) : "cancelled";
  }
}

// Drives `rpc` until `step` is done or the deadline passes.
bool RunStep(rpc_context* rpc, Step& step, Clock::time_point deadline) {
  while (!step.done) {
    if (Clock::now() >= deadline) {
      step.error = "no answer in time";
      return false;
    }
    pollfd pfd{rpc_get_fd(rpc), static_cast<short>(rpc_which_events(rpc)), 0};
    if (poll(&pfd, 1, 100) < 0 && errno != EINTR) return false;
    if (rpc_service(rpc, pfd.revents) < 0) {
      if (!step.done) step.error = RpcError(rpc);
      return step.done && step.status == RPC_STATUS_SUCCESS;
    }
  }
  return step.status == RPC_STATUS_SUCCESS;
}

struct Context {
  rpc_context* rpc = rpc_init_context();
  ~Context() {
    if (rpc != nullptr) rpc_destroy_context(rpc);
  }
};

// Connects `ctx` to MOUNT v3 on `address`.
Status ConnectMount(Context& ctx, const std::string& address, uint16_t mount_port,
                    Clock::time_point deadline, const std::string& machine_name) {
  if (ctx.rpc == nullptr) return Status::Internal("libnfs: cannot create an RPC context");
  rpc_set_auth(ctx.rpc, libnfs_authunix_create(machine_name.c_str(), 0, 0, 0, nullptr));
  Step connect;
  const int rc =
      mount_port != 0
          ? rpc_connect_port_async(ctx.rpc, address.c_str(), mount_port, MOUNT_PROGRAM, MOUNT_V3,
                                   OnStep, &connect)
          : rpc_connect_program_async(ctx.rpc, address.c_str(), MOUNT_PROGRAM, MOUNT_V3, OnStep,
                                      &connect);
  if (rc != 0) connect.error = RpcError(ctx.rpc);
  if (rc != 0 || !RunStep(ctx.rpc, connect, deadline)) {
    const std::string where =
        mount_port != 0 ? address + ":" + std::to_string(mount_port)
                        : address + " (port from rpcbind on " + address + ":111)";
    return Status::Transport("cannot reach the NFSv3 MOUNT service at " + where + ": " +
                             connect.error);
  }
  return Status::Ok();
}

}  // namespace

Result<MountReply> MountExport(const std::string& address, uint16_t mount_port,
                               const std::string& export_path, std::chrono::milliseconds timeout,
                               const std::string& machine_name) {
  const auto deadline = Clock::now() + timeout;
  Context ctx;
  if (Status s = ConnectMount(ctx, address, mount_port, deadline, machine_name); !s.ok()) return s;
  MountReply reply;
  int mount_status = MNT3_OK;
  Step mnt;
  mnt.on_success = [&](void* data) {
    const auto* res = static_cast<const mountres3*>(data);
    mount_status = res->fhs_status;
    if (mount_status != MNT3_OK) return;
    const mountres3_ok& ok = res->mountres3_u.mountinfo;
    reply.root = FileHandle(reinterpret_cast<const uint8_t*>(ok.fhandle.fhandle3_val),
                            ok.fhandle.fhandle3_len);
    reply.auth_flavors.assign(ok.auth_flavors.auth_flavors_val,
                              ok.auth_flavors.auth_flavors_val + ok.auth_flavors.auth_flavors_len);
  };
  std::string path = export_path;
  if (rpc_mount3_mnt_async(ctx.rpc, OnStep, path.data(), &mnt) != 0) {
    return Status::Internal(std::string("MNT: ") + RpcError(ctx.rpc));
  }
  if (!RunStep(ctx.rpc, mnt, deadline)) {
    return Status::Transport("MOUNT MNT " + export_path + ": " + mnt.error);
  }
  if (mount_status != MNT3_OK) {
    return Status::Nfs(uint32_t(mount_status), "MOUNT MNT " + export_path);
  }
  return reply;
}

void UnmountExport(const std::string& address, uint16_t mount_port,
                   const std::string& export_path, std::chrono::milliseconds timeout,
                   const std::string& machine_name) {
  const auto deadline = Clock::now() + timeout;
  Context ctx;
  if (Status s = ConnectMount(ctx, address, mount_port, deadline, machine_name); !s.ok()) {
    spdlog::debug("UMNT {}: {}", export_path, s.ToString());
    return;
  }
  Step umnt;
  std::string path = export_path;
  if (rpc_mount3_umnt_async(ctx.rpc, OnStep, path.data(), &umnt) != 0 ||
      !RunStep(ctx.rpc, umnt, deadline)) {
    spdlog::debug("UMNT {}: {}", export_path, umnt.error);
  }
}

}  // namespace floatmount::nfs::v3
