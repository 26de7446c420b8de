#include "agent/status/status.h"

#include <fmt/format.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

namespace floatmount::agent {
namespace {

std::string Bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof(out), u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return out;
}

std::string Duration(double s) {
  const uint64_t t = uint64_t(s);
  char out[32];
  if (t >= 86400) {
    std::snprintf(out, sizeof(out), "%" PRIu64 "d%02" PRIu64 "h", t / 86400, t % 86400 / 3600);
  } else if (t >= 3600) {
    std::snprintf(out, sizeof(out), "%" PRIu64 "h%02" PRIu64 "m", t / 3600, t % 3600 / 60);
  } else {
    std::snprintf(out, sizeof(out), "%" PRIu64 "m%02" PRIu64 "s", t / 60, t % 60);
  }
  return out;
}

// Prometheus label values: backslash, quote and newline escaped.
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string FormatHuman(const MountStatus& s) {
  std::ostringstream o;
  const nfs::ServerInfo& e = s.engine;
  const fuse::CacheStats& c = s.cache;
  size_t up = 0;
  for (const auto& conn : e.connections) up += conn.up ? 1 : 0;
  o << s.mountpoint << ": " << s.server << ":" << s.export_path << " (up " << Duration(s.uptime_s)
    << ")\n";
  if (e.protocol == "3") {
    // NFSv3 has no client ID, session or lease.
    o << "  protocol     NFSv3 through libnfs (no locks); rsize " << Bytes(e.rsize) << ", wsize "
      << Bytes(e.wsize) << "\n";
  } else {
    o << "  client       " << s.owner_id << "\n";
    o << "  server       owner " << e.server_owner_major << ", scope " << e.server_scope;
    if (!e.impl_name.empty()) o << ", " << e.impl_name;
    o << "; lease " << e.lease_time << " s\n";
    char clientid[32];
    std::snprintf(clientid, sizeof(clientid), "%016" PRIx64, e.clientid);
    o << "  session      " << e.session_id << " (client ID " << clientid << "), " << e.slots
      << " slots, rsize " << Bytes(e.rsize) << ", wsize " << Bytes(e.wsize) << "\n";
    if (e.slots_interrupted > 0 || e.slot_resyncs > 0) {
      o << "  slots        " << e.slots_interrupted
        << " waiting to be resynchronised (calls given up by `soft`), " << e.slot_resyncs
        << " resynchronised\n";
    }
  }
  o << "  connections  " << up << " of " << e.connections.size() << " up\n";
  for (const auto& conn : e.connections) {
    char line[160];
    std::snprintf(line, sizeof(line), "    %-22s %-4s %4zu in flight   sent %10s   received %10s\n",
                  conn.endpoint.ToString().c_str(), conn.up ? "up" : "down", conn.outstanding,
                  Bytes(double(conn.bytes_sent)).c_str(),
                  Bytes(double(conn.bytes_received)).c_str());
    o << line;
  }
  if (!e.addresses.empty()) {
    // Which server owner each address leads to (RFC 8881 2.10.5).
    o << "  addresses\n";
    for (const auto& a : e.addresses) {
      o << "    " << a.endpoint.ToString() << "  " << a.role;
      if (!a.server_owner.empty()) o << ", server owner " << a.server_owner;
      if (a.role == "other-server") o << ": another server, not used";
      if (a.role == "client-id") o << ": another node, not in this session";
      if (!a.listed) o << " (no longer in DNS)";
      if (!a.answering) o << " (not answering)";
      o << "\n";
    }
  } else {
    for (const auto& ex : e.excluded) o << "    " << ex.ToString() << " not used: another server\n";
  }
  if (!e.session_storm.empty()) o << "  ERROR        session storm: " << e.session_storm << "\n";
  o << "  throughput   read " << Bytes(s.throughput.read_bytes_per_s) << "/s, write "
    << Bytes(s.throughput.write_bytes_per_s) << "/s (last 5 s)\n";
  o << "  cache        " << Bytes(double(c.in_use)) << " of " << Bytes(double(c.budget))
    << " in use (most " << Bytes(double(c.high_water)) << "); dirty " << Bytes(double(c.dirty))
    << ", unstable " << Bytes(double(c.unstable)) << "\n";
  o << "  reads        " << Bytes(double(c.read_from_cache)) << " from read-ahead, "
    << Bytes(double(c.read_from_server)) << " directly; prefetched " << Bytes(double(c.prefetched))
    << ", " << Bytes(double(c.prefetch_wasted)) << " unused; " << c.read_waits << " reads waited\n";
  char flush[64];
  std::snprintf(flush, sizeof(flush), "%.3f", c.flush_seconds_max);
  o << "  write-back   " << Bytes(double(c.written_back)) << " in " << c.commits << " commits; "
    << Bytes(double(c.resent)) << " resent; " << c.write_errors << " errors; " << c.flushes
    << " flushes (longest " << flush << " s); " << c.writer_waits << " writer waits\n";
  o << "  locks        " << c.lock_invalidations
    << " granted locks (each dropped the file's cached data)\n";
  o << "  recovery     " << e.reconnects << " reconnects, " << e.session_recoveries
    << " new sessions (" << e.sessions_created << " created in all), " << e.clientid_recoveries
    << " new client IDs, " << e.stateid_recoveries << " stateid repairs (" << e.stateids_revoked
    << " stateids revoked or lost), " << e.retries << " retries, " << e.reruns_done
    << " reruns reported done\n";
  if (!e.calls.empty()) {
    uint64_t total = 0;
    for (const auto& [name, n] : e.calls) total += n;
    o << "  calls        " << total << " in all:";
    const char* sep = " ";
    for (const auto& [name, n] : e.calls) {
      o << sep << name << " " << n;
      sep = ", ";
    }
    o << "\n";
  }
  if (!e.latency.empty()) {
    // Round trip of the last send, then submission to completion: a gap
    // between them is time spent waiting in the client (slots, resends,
    // recovery), not on the network or the server.
    o << "  latency      ms, p50/p99 (power-of-two buckets): round trip | whole call (max)\n";
    for (const auto& [name, l] : e.latency) {
      char line[200];
      std::snprintf(line, sizeof(line),
                    "    %-28s %8" PRIu64 " calls  %7.1f/%-7.1f | %7.1f/%-7.1f (%.1f)\n",
                    name.c_str(), l.count, l.rtt_p50_us / 1e3, l.rtt_p99_us / 1e3,
                    l.total_p50_us / 1e3, l.total_p99_us / 1e3, l.total_max_us / 1e3);
      o << line;
    }
  }
  return o.str();
}

std::string FormatJson(const MountStatus& s) {
  using nlohmann::json;
  const nfs::ServerInfo& e = s.engine;
  const fuse::CacheStats& c = s.cache;
  json conns = json::array();
  for (const auto& conn : e.connections) {
    conns.push_back({{"address", conn.endpoint.address},
                     {"port", conn.endpoint.port},
                     {"up", conn.up},
                     {"in_flight", conn.outstanding},
                     {"bytes_sent", conn.bytes_sent},
                     {"bytes_received", conn.bytes_received}});
  }
  json excluded = json::array();
  for (const auto& ex : e.excluded) excluded.push_back(ex.ToString());
  json addresses = json::array();
  for (const auto& a : e.addresses) {
    addresses.push_back({{"address", a.endpoint.address},
                         {"port", a.endpoint.port},
                         {"role", a.role},
                         {"server_owner", a.server_owner},
                         {"server_scope", a.server_scope},
                         {"listed", a.listed},
                         {"answering", a.answering}});
  }
  json j = {
      {"mountpoint", s.mountpoint},
      {"server", s.server},
      {"export", s.export_path},
      {"node_id", s.node_id},
      {"owner_id", s.owner_id},
      {"uptime_seconds", s.uptime_s},
      {"nconnect", s.nconnect},
      {"protocol", e.protocol},
      {"session",
       {{"id", e.session_id},
        {"clientid", e.clientid},
        {"server_owner", e.server_owner_major},
        {"server_scope", e.server_scope},
        {"server_impl", e.impl_name},
        {"lease_seconds", e.lease_time},
        {"slots", e.slots},
        {"slots_interrupted", e.slots_interrupted},
        {"slot_resyncs", e.slot_resyncs},
        {"rsize", e.rsize},
        {"wsize", e.wsize}}},
      {"connections", conns},
      {"excluded_addresses", excluded},
      {"addresses", addresses},
      {"throughput",
       {{"read_bytes_per_second", s.throughput.read_bytes_per_s},
        {"write_bytes_per_second", s.throughput.write_bytes_per_s}}},
      {"cache",
       {{"budget_bytes", c.budget},
        {"in_use_bytes", c.in_use},
        {"high_water_bytes", c.high_water},
        {"dirty_bytes", c.dirty},
        {"unstable_bytes", c.unstable},
        {"read_from_cache_bytes", c.read_from_cache},
        {"read_from_server_bytes", c.read_from_server},
        {"prefetched_bytes", c.prefetched},
        {"prefetch_hits", c.prefetch_hits},
        {"prefetch_wasted_bytes", c.prefetch_wasted},
        {"read_waits", c.read_waits},
        {"written_back_bytes", c.written_back},
        {"commits", c.commits},
        {"resent_bytes", c.resent},
        {"write_errors", c.write_errors},
        {"flushes", c.flushes},
        {"flush_seconds_total", c.flush_seconds_total},
        {"flush_seconds_max", c.flush_seconds_max},
        {"writer_waits", c.writer_waits},
        {"lock_invalidations", c.lock_invalidations}}},
      {"recovery",
       {{"reconnects", e.reconnects},
        {"session_recoveries", e.session_recoveries},
        {"clientid_recoveries", e.clientid_recoveries},
        {"stateid_recoveries", e.stateid_recoveries},
        {"stateids_revoked", e.stateids_revoked},
        {"reruns_done", e.reruns_done},
        {"sessions_created", e.sessions_created},
        {"session_storm", e.session_storm},
        {"retries", e.retries}}},
      {"calls", e.calls},
  };
  json latency = json::object();
  for (const auto& [name, l] : e.latency) {
    latency[name] = {{"count", l.count},           {"rtt_p50_us", l.rtt_p50_us},
                     {"rtt_p99_us", l.rtt_p99_us}, {"p50_us", l.total_p50_us},
                     {"p99_us", l.total_p99_us},   {"max_us", l.total_max_us}};
  }
  j["latency"] = latency;
  return j.dump();
}

nfs::Result<MountStatus> ParseStatusJson(const std::string& text) {
  using nlohmann::json;
  try {
    const json j = json::parse(text);
    MountStatus s;
    j.at("mountpoint").get_to(s.mountpoint);
    j.at("server").get_to(s.server);
    j.at("export").get_to(s.export_path);
    j.at("node_id").get_to(s.node_id);
    j.at("owner_id").get_to(s.owner_id);
    j.at("uptime_seconds").get_to(s.uptime_s);
    j.at("nconnect").get_to(s.nconnect);
    const json& se = j.at("session");
    nfs::ServerInfo& e = s.engine;
    e.protocol = j.value("protocol", "4.1");
    se.at("id").get_to(e.session_id);
    se.at("clientid").get_to(e.clientid);
    se.at("server_owner").get_to(e.server_owner_major);
    se.at("server_scope").get_to(e.server_scope);
    se.at("server_impl").get_to(e.impl_name);
    se.at("lease_seconds").get_to(e.lease_time);
    se.at("slots").get_to(e.slots);
    e.slots_interrupted = se.value("slots_interrupted", uint32_t{0});
    e.slot_resyncs = se.value("slot_resyncs", uint64_t{0});
    se.at("rsize").get_to(e.rsize);
    se.at("wsize").get_to(e.wsize);
    for (const json& c : j.at("connections")) {
      nfs::ConnectionInfo ci;
      c.at("address").get_to(ci.endpoint.address);
      c.at("port").get_to(ci.endpoint.port);
      c.at("up").get_to(ci.up);
      c.at("in_flight").get_to(ci.outstanding);
      c.at("bytes_sent").get_to(ci.bytes_sent);
      c.at("bytes_received").get_to(ci.bytes_received);
      e.connections.push_back(ci);
    }
    for (const json& x : j.at("excluded_addresses")) {
      const std::string text = x.get<std::string>();
      nfs::Endpoint ep;
      const size_t colon = text.rfind(':');
      ep.address = text.substr(0, colon);
      if (colon != std::string::npos) ep.port = uint16_t(std::stoi(text.substr(colon + 1)));
      e.excluded.push_back(ep);
    }
    if (j.contains("addresses")) {
      for (const json& x : j.at("addresses")) {
        nfs::AddressInfo a;
        x.at("address").get_to(a.endpoint.address);
        x.at("port").get_to(a.endpoint.port);
        x.at("role").get_to(a.role);
        x.at("server_owner").get_to(a.server_owner);
        x.at("server_scope").get_to(a.server_scope);
        x.at("listed").get_to(a.listed);
        x.at("answering").get_to(a.answering);
        e.addresses.push_back(a);
      }
    }
    const json& t = j.at("throughput");
    t.at("read_bytes_per_second").get_to(s.throughput.read_bytes_per_s);
    t.at("write_bytes_per_second").get_to(s.throughput.write_bytes_per_s);
    const json& c = j.at("cache");
    fuse::CacheStats& k = s.cache;
    c.at("budget_bytes").get_to(k.budget);
    c.at("in_use_bytes").get_to(k.in_use);
    c.at("high_water_bytes").get_to(k.high_water);
    c.at("dirty_bytes").get_to(k.dirty);
    c.at("unstable_bytes").get_to(k.unstable);
    c.at("read_from_cache_bytes").get_to(k.read_from_cache);
    c.at("read_from_server_bytes").get_to(k.read_from_server);
    c.at("prefetched_bytes").get_to(k.prefetched);
    c.at("prefetch_hits").get_to(k.prefetch_hits);
    c.at("prefetch_wasted_bytes").get_to(k.prefetch_wasted);
    c.at("read_waits").get_to(k.read_waits);
    c.at("written_back_bytes").get_to(k.written_back);
    c.at("commits").get_to(k.commits);
    c.at("resent_bytes").get_to(k.resent);
    c.at("write_errors").get_to(k.write_errors);
    c.at("flushes").get_to(k.flushes);
    c.at("flush_seconds_total").get_to(k.flush_seconds_total);
    c.at("flush_seconds_max").get_to(k.flush_seconds_max);
    c.at("writer_waits").get_to(k.writer_waits);
    k.lock_invalidations = c.value("lock_invalidations", uint64_t{0});
    const json& r = j.at("recovery");
    r.at("reconnects").get_to(e.reconnects);
    r.at("session_recoveries").get_to(e.session_recoveries);
    r.at("clientid_recoveries").get_to(e.clientid_recoveries);
    r.at("retries").get_to(e.retries);
    e.stateid_recoveries = r.value("stateid_recoveries", uint64_t{0});
    e.stateids_revoked = r.value("stateids_revoked", uint64_t{0});
    e.reruns_done = r.value("reruns_done", uint64_t{0});
    e.sessions_created = r.value("sessions_created", uint64_t{0});
    e.session_storm = r.value("session_storm", std::string());
    if (j.contains("calls")) j.at("calls").get_to(e.calls);
    if (j.contains("latency")) {
      for (const auto& [name, l] : j.at("latency").items()) {
        nfs::OpLatency& x = e.latency[name];
        l.at("count").get_to(x.count);
        l.at("rtt_p50_us").get_to(x.rtt_p50_us);
        l.at("rtt_p99_us").get_to(x.rtt_p99_us);
        l.at("p50_us").get_to(x.total_p50_us);
        l.at("p99_us").get_to(x.total_p99_us);
        l.at("max_us").get_to(x.total_max_us);
      }
    }
    return s;
  } catch (const std::exception& ex) {
    return nfs::Status::Protocol(std::string("unreadable status from the agent: ") + ex.what());
  }
}

namespace {

// Metric families in first-seen order, each with its samples from every
// mount: the text format wants one HELP/TYPE per family and its samples
// together.
class Exposition {
 public:
  void Add(const std::string& name, const char* type, const char* help, const std::string& labels,
           double value) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, families_.size()).first;
      families_.push_back(Family{name, type, help, {}});
    }
    // The shortest form that reads back as the same double (fmt's "{}"):
    // byte counters keep every digit instead of 3.34574e+08.
    families_[it->second].samples.push_back(fmt::format("{}{{{}}} {}\n", name, labels, value));
  }
  std::string Text() const {
    std::string out;
    for (const Family& f : families_) {
      out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
      for (const std::string& sample : f.samples) out += sample;
    }
    return out;
  }

 private:
  struct Family {
    std::string name, type, help;
    std::vector<std::string> samples;
  };
  std::vector<Family> families_;
  std::map<std::string, size_t> index_;
};

void AddMount(const MountStatus& s, Exposition* x) {
  const std::string labels =
      "mountpoint=\"" + LabelValue(s.mountpoint) + "\",server=\"" + LabelValue(s.server) + "\"";
  auto add = [&](const char* name, const char* type, const char* help, double value) {
    x->Add(name, type, help, labels, value);
  };
  const nfs::ServerInfo& e = s.engine;
  const fuse::CacheStats& c = s.cache;
  size_t up = 0;
  for (const auto& conn : e.connections) up += conn.up ? 1 : 0;
  add("floatmount_up", "gauge", "1 while the mount's agent answers.", 1);
  add("floatmount_uptime_seconds", "gauge", "Seconds since the mount was made.", s.uptime_s);
  add("floatmount_connections_up", "gauge", "Connections to the server that are up.", double(up));
  for (size_t i = 0; i < e.connections.size(); ++i) {
    const auto& conn = e.connections[i];
    const std::string conn_labels = labels + ",address=\"" + LabelValue(conn.endpoint.ToString()) +
                                    "\",connection=\"" + std::to_string(i) + "\"";
    x->Add("floatmount_connection_in_flight", "gauge",
           "Calls sent on the connection and not yet answered.", conn_labels,
           double(conn.outstanding));
    x->Add("floatmount_connection_sent_bytes_total", "counter",
           "Bytes sent on the connection since it was made.", conn_labels, double(conn.bytes_sent));
    x->Add("floatmount_connection_received_bytes_total", "counter",
           "Bytes received on the connection since it was made.", conn_labels,
           double(conn.bytes_received));
  }
  add("floatmount_read_bytes_per_second", "gauge", "Read through the mount, last 5 s.",
      s.throughput.read_bytes_per_s);
  add("floatmount_write_bytes_per_second", "gauge", "Written back to the server, last 5 s.",
      s.throughput.write_bytes_per_s);
  add("floatmount_cache_budget_bytes", "gauge", "cache_size: memory for read-ahead and dirty data.",
      double(c.budget));
  add("floatmount_cache_used_bytes", "gauge", "Cache memory in use.", double(c.in_use));
  add("floatmount_cache_dirty_bytes", "gauge",
      "Written by programs, not yet acknowledged by the server.", double(c.dirty));
  add("floatmount_cache_unstable_bytes", "gauge", "On the server, not yet committed.",
      double(c.unstable));
  add("floatmount_read_from_cache_bytes_total", "counter", "Read from read-ahead chunks.",
      double(c.read_from_cache));
  add("floatmount_read_from_server_bytes_total", "counter", "Read with READs programs asked for.",
      double(c.read_from_server));
  add("floatmount_prefetched_bytes_total", "counter", "Fetched ahead of programs.",
      double(c.prefetched));
  add("floatmount_prefetch_wasted_bytes_total", "counter", "Prefetched and dropped unread.",
      double(c.prefetch_wasted));
  add("floatmount_prefetch_hits_total", "counter", "Prefetched chunks that were read.",
      double(c.prefetch_hits));
  add("floatmount_read_waits_total", "counter", "Reads that waited for a chunk on the wire.",
      double(c.read_waits));
  add("floatmount_written_back_bytes_total", "counter", "Sent by WRITE from the cache.",
      double(c.written_back));
  add("floatmount_commits_total", "counter", "COMMIT calls.", double(c.commits));
  add("floatmount_resent_bytes_total", "counter", "Sent again after the server restarted.",
      double(c.resent));
  add("floatmount_write_errors_total", "counter", "Failed background WRITE or COMMIT calls.",
      double(c.write_errors));
  add("floatmount_flushes_total", "counter", "flush/fsync/close waits for a commit.",
      double(c.flushes));
  add("floatmount_flush_seconds_total", "counter", "Time spent in those waits.",
      c.flush_seconds_total);
  add("floatmount_writer_waits_total", "counter", "Writes that waited for cache memory.",
      double(c.writer_waits));
  add("floatmount_lock_invalidations_total", "counter",
      "Granted locks; each dropped the file's cached data (lock-time revalidation).",
      double(c.lock_invalidations));
  add("floatmount_rpc_retries_total", "counter",
      "Calls sent again (lost connection, DELAY, GRACE).", double(e.retries));
  add("floatmount_reconnects_total", "counter", "Connections made again.", double(e.reconnects));
  add("floatmount_slot_resyncs_total", "counter",
      "Session slots resynchronised after a call on them was given up (soft mounts).",
      double(e.slot_resyncs));
  add("floatmount_session_recoveries_total", "counter", "New NFSv4.1 sessions after the first.",
      double(e.session_recoveries));
  add("floatmount_sessions_created_total", "counter",
      "NFSv4.1 sessions created, the first included.", double(e.sessions_created));
  add("floatmount_session_storm", "gauge",
      "1 once the bound on new sessions per minute held one back (a bug).",
      e.session_storm.empty() ? 0.0 : 1.0);
  add("floatmount_clientid_recoveries_total", "counter", "New client IDs (server restarts).",
      double(e.clientid_recoveries));
  add("floatmount_stateid_recoveries_total", "counter",
      "TEST_STATEID passes (revoked-state flag, or a stateid error on one request).",
      double(e.stateid_recoveries));
  add("floatmount_stateids_revoked_total", "counter",
      "Open and lock stateids the server had revoked or lost.", double(e.stateids_revoked));
  add("floatmount_reruns_done_total", "counter",
      "Requests run again after a server restart lost their replies, whose error was their own "
      "first run's work: reported done.",
      double(e.reruns_done));
  for (const auto& [op, n] : e.calls) {
    x->Add("floatmount_calls_total", "counter", "NFSv4.1 compounds sent, by main operation.",
           labels + ",op=\"" + LabelValue(op) + "\"", double(n));
  }
}

}  // namespace

std::string FormatPrometheus(const std::vector<MountStatus>& mounts) {
  Exposition x;
  for (const MountStatus& s : mounts) AddMount(s, &x);
  return x.Text();
}

}  // namespace floatmount::agent
